"""Start-up figures a kubectl user feels (issue 13, targets in brackets).

    .venv/bin/python -m bench.startup [--runs 7] [--sessions 20] [--files 1000] [--state-dir DIR]

- `ls -A` with --sessions sessions against `kubectl get buckets -A`, run in
  alternation; median, spread, and the ratio of the medians      [<= 2.5x]
- `sync` with nothing changed on a tree of --files files, once Flux has
  settled after `up` (SETTLE seconds)                                [<= 0.5 s]
- `--help`                                                           [<= 150 ms]
- bytecode: how much of site-packages and of the package has it, and each
  figure again with the package compiled (a copy on PYTHONPATH): an editable
  install is not compiled, a pip install is.

The sessions for `ls` are their labelled objects only (Bucket and
Kustomization suspended, Deployment scaled to 0): no bucket server runs.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path

from bench.common import EXE, alternate, local_cluster, spread, timed
from bench.sync_speed import make_tree

PACKAGE = Path(__file__).resolve().parents[1] / "kubectl_gitops_run"
SETTLE = 20     # seconds after `up` before `sync` is timed


def bytecode_share(root: Path) -> dict:
    """.py files under root, and how many have a current-version .pyc."""
    tag = sys.implementation.cache_tag
    sources = list(root.rglob("*.py"))
    compiled = sum((p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").exists() for p in sources)
    return {"py": len(sources), "with_pyc": compiled}


def compiled_copy(tmp: Path) -> Path:
    """The package copied and compiled: what a pip install runs."""
    top = tmp / "compiled"
    shutil.copytree(PACKAGE, top / PACKAGE.name,
                    ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(str(top), quiet=1)
    return top


def fake_sessions(kubeconfig: str, ns: str, count: int) -> None:
    """The objects of `count` sessions, as `up` labels them, with nothing running."""
    from kubectl_gitops_run.adapters.kube import connect
    from kubectl_gitops_run.core import manifests
    kube = connect(kubeconfig, None, ns)
    for i in range(count):
        spec = manifests.Spec(name=f"s{i:02}", namespace=ns, source=f"/src/app{i}",
                              host="bench", user="bench", pod_key=manifests.new_pod_key())
        creds = manifests.new_credentials()
        objs = [manifests.secret(spec, creds), manifests.service(spec),
                manifests.deployment(spec, manifests.credentials_digest(creds)),
                manifests.bucket(spec, manifests.SLOTS[0], {}), manifests.kustomization(spec)]
        objs[2]["spec"]["replicas"] = 0
        objs[3]["spec"]["suspend"] = objs[4]["spec"]["suspend"] = True
        for obj in objs:
            kube.apply(obj)


def paired(commands: dict[str, list[str]], env: dict, compiled_env: dict, runs: int) -> dict:
    """Each command as installed and with the package compiled, in alternation."""
    plan = {}
    for name, argv in commands.items():
        plan[name] = argv
        if argv[0] == EXE:
            plan[name + "_compiled"] = ["env", f"PYTHONPATH={compiled_env['PYTHONPATH']}", *argv]
    return {name: spread(times) for name, times in alternate(plan, env, runs).items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    out: dict = {"bytecode": {
        "site_packages": bytecode_share(Path(sysconfig.get_paths()["purelib"])),
        "package": bytecode_share(PACKAGE),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}}
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        env = cluster.env()
        compiled = {"PYTHONPATH": str(compiled_copy(tmp))}
        kubectl = str(cluster.bin / "kubectl")
        out["help_s"] = paired({"plugin": [EXE, "--help"]}, env, compiled, args.runs)
        fake_sessions(str(cluster.state.kubeconfig), ns, args.sessions)
        timed([kubectl, "get", "buckets", "-A"], env)      # kubectl's discovery cache
        out["ls_s"] = paired({"plugin": [EXE, "ls", "-A"],
                              "kubectl": [kubectl, "get", "buckets", "-A"]},
                             env, compiled, args.runs)
        for variant in ("plugin", "plugin_compiled"):
            out["ls_s"][f"ratio_{variant}"] = round(
                out["ls_s"][variant]["median"] / out["ls_s"]["kubectl"]["median"], 2)
        tree = tmp / "tree"
        make_tree(tree, args.files)
        timed([EXE, "up", str(tree), "-n", ns, "--name", "nochange", "--path", "deploy"], env)
        # Flux goes on reconciling for some seconds after `up` (its own requests);
        # a sync meanwhile waits for that: measure a sync once Flux is idle
        time.sleep(SETTLE)
        timed([EXE, "sync", "nochange", "-n", ns], env)
        out["sync_nochange_s"] = paired({"plugin": [EXE, "sync", "nochange", "-n", ns]},
                                        env, compiled, args.runs)
        timed([EXE, "down", "nochange", "-n", ns], env)
    print(json.dumps({"sessions": args.sessions, "files": args.files, **out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
