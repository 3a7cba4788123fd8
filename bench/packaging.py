"""Start-up cost of the single-file zipapp next to the pip-installed plugin.

    .venv/bin/python -m bench.packaging [--zipapp dist/kubectl-gitops_run] [--runs 5]
                                        [--cold-runs 3] [--state-dir DIR]

Times, wall clock, in milliseconds:

- `--help` (no cluster access; must not import `kubernetes`),
- `ls -n <empty namespace>` against the local control plane (imports the
  client, reads the kubeconfig, lists five kinds of objects),

for two installs of the same code:

- zipapp: dist/kubectl-gitops_run (built here into a temporary directory with
  packaging/dist.py unless --zipapp names one). *cold* is a first run: an empty
  KUBECTL_GITOPS_RUN_CACHE, so the run unpacks the archive and compiles its
  bytecode before it starts (median of --cold-runs first runs, each with a
  cache of its own). *warm* is the median of --runs runs once the cache holds
  the unpacked build.
- pip: the console script of this venv (`pip install -e .`, as `make venv`
  installs it). pip compiled the dependencies' bytecode at install and there
  is nothing to unpack (the plugin's own modules, an editable install, are
  compiled on each run when PYTHONDONTWRITEBYTECODE is set): *cold* is its
  first run here (after the zipapp's, so the OS file cache may already hold
  the interpreter), *warm* the median of the next runs.

Both run under the same interpreter (the one this venv was made from), so the
figures compare the packaging, not two Pythons; `zipapp_help_warm_ms_via_path`
adds how the plugin really starts once installed: `#!/usr/bin/env python3`,
whatever python3 PATH finds first. The environment is left as it is (e.g.
PYTHONDONTWRITEBYTECODE, which this machine sets) and reported, with what
each interpreter costs to start with no code of ours (`python -c pass`): the
zipapp runs on the base interpreter, whose site-packages' .pth files this
venv's interpreter skips.

Starts a private local control plane (or reuses the running one in
--state-dir, e.g. ~/.cache/kubectl-gitops-run/dev-cluster). Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import EXE, local_cluster

ROOT = Path(__file__).resolve().parent.parent


def timed_ms(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    res = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, timeout=600)
    took = 1000 * (time.perf_counter() - start)
    if res.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{res.stderr}")
    return took


def build_zipapp(out: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    res = subprocess.run([sys.executable, str(ROOT / "packaging" / "dist.py"), "--dist", str(out)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"bench: packaging/dist.py failed:\n{res.stderr[-4000:]}")
    return out / "kubectl-gitops_run", time.perf_counter() - started


def base_python() -> str:
    """The interpreter this venv was made from (no venv site-packages)."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def cold_and_warm(argv: list[str], env: dict, runs: int, cold_runs: int,
                  fresh_cache=None) -> dict:
    """With fresh_cache (the zipapp): the median of `cold_runs` first runs, each
    with an empty cache of its own; then the last of those caches is used for
    the median of `runs` warm runs. Without (pip): the first run is the cold
    one, the median of `runs` more the warm figure."""
    out = {}
    if fresh_cache is not None:
        cold = []
        for _ in range(cold_runs):
            env = dict(env, KUBECTL_GITOPS_RUN_CACHE=str(fresh_cache()))
            cold.append(timed_ms(argv, env))
        out["cold_ms"] = statistics.median(cold)
        out["cold_samples_ms"] = [round(s, 1) for s in cold]
    else:
        out["cold_ms"] = timed_ms(argv, env)
        out["cold_samples_ms"] = [round(out["cold_ms"], 1)]
    samples = [timed_ms(argv, env) for _ in range(runs)]
    out["warm_ms"] = statistics.median(samples)
    out["warm_samples_ms"] = [round(s, 1) for s in samples]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zipapp", type=Path, help="an already built zipapp (default: build one)")
    ap.add_argument("--runs", type=int, default=5, help="warm runs (median)")
    ap.add_argument("--cold-runs", type=int, default=3,
                    help="zipapp first runs, each with an empty cache (median)")
    ap.add_argument("--state-dir", type=Path,
                    help="reuse the running local control plane in DIR")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-packaging-"))
    figures: dict = {"runs": args.runs, "cold_runs": args.cold_runs}
    try:
        if args.zipapp:
            app = args.zipapp.resolve()
        else:
            app, took = build_zipapp(scratch / "dist")
            figures["dist_build_s"] = round(took, 1)
        figures["zipapp_kib"] = app.stat().st_size // 1024
        python = base_python()
        figures["python"] = f"{python} ({sys.version.split()[0]})"
        figures["PYTHONDONTWRITEBYTECODE"] = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
        caches = iter(range(1_000_000))

        def fresh_cache() -> Path:
            return scratch / f"cache-{next(caches)}"

        with local_cluster(args.state_dir) as (cluster, ns, _tmp):
            env = cluster.env()
            env.pop("PYTHONPATH", None)
            zipapp = [python, str(app)]
            pip = [EXE]
            for name, argv, cache in (("zipapp", zipapp, fresh_cache), ("pip", pip, None)):
                for what, extra in (("help", ["--help"]), ("ls", ["ls", "-n", ns])):
                    got = cold_and_warm(argv + extra, env, args.runs, args.cold_runs, cache)
                    figures[f"{name}_{what}_cold_ms"] = round(got["cold_ms"], 1)
                    figures[f"{name}_{what}_cold_samples_ms"] = got["cold_samples_ms"]
                    figures[f"{name}_{what}_warm_ms"] = round(got["warm_ms"], 1)
                    figures[f"{name}_{what}_warm_samples_ms"] = got["warm_samples_ms"]
            # As installed: the shebang's `env python3`, through PATH.
            warm = dict(env, KUBECTL_GITOPS_RUN_CACHE=str(fresh_cache()))
            timed_ms([str(app), "--help"], warm)
            figures["zipapp_help_warm_ms_via_path"] = round(statistics.median(
                timed_ms([str(app), "--help"], warm) for _ in range(args.runs)), 1)
            figures["path_python3"] = shutil.which("python3", path=env.get("PATH"))
            # What the interpreters cost before any of our code runs: the base
            # one processes its own site-packages (.pth files), a venv's does not.
            for name, exe in (("base", python), ("venv", sys.executable)):
                figures[f"{name}_python_startup_ms"] = round(statistics.median(
                    timed_ms([exe, "-c", "pass"], env) for _ in range(args.runs)), 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
