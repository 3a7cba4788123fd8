"""The load of many developers on one cluster (issue 13, item 5).

    .venv/bin/python -m bench.load --state-dir /tmp/load-cluster [--developers 5]
        [--minutes 1] [--every 10] [--batch 4] [--idle 60]

Run it against a private cluster (`python -m devcluster.cluster up --state-dir
/tmp/load-cluster`): it starts one bucket server per developer.

1. First the cost of one developer, from bench.api_requests (the audit log):
   the requests of one `sync` and of an idle `sync --watch` over --idle s
   (0 skips it).
2. Then --developers sessions, made with `up --no-wait` --batch at a time, each
   in a real `kubectl-gitops_run sync --watch` process at once. Each developer
   rewrites one ConfigMap manifest every --every s for --minutes, the
   developers staggered evenly over the period. One watch of ConfigMaps in the
   bench sees each value land: edit-to-applied is the file write until the
   object in the cluster shows the value.

Reported over the window from the first edit until the last one landed (or
DRAIN s passed): the API server's requests per second from its /metrics
(apiserver_request_total deltas, by verb and resource; a WATCH is counted when
it ends), the plugin's own requests (the watches run as the audited
developer), each watch process's CPU (from /proc/<pid>/stat) and RSS, the CPU
of the control plane's processes, the RSS of the MinIO processes, the load
average and available memory, edit-to-applied p50/p95, and what broke: error
lines, edits never applied, processes that died. Then every watch gets
Ctrl-C and the namespace is deleted. Prints JSON.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import api_requests
from bench.common import EXE, local_cluster, percentile

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{value}'\n"
DRAIN = 90.0            # seconds after the last edit for the last values to land
READY = 600.0           # seconds for every watch to finish its first cycle
COMPONENTS = ("kube-apiserver", "etcd", "source-controller", "kustomize-controller",
              "kwok", "kube-controller-manager", "bucket-runtime")


# -- what the machine says -----------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far (/proc/<pid>/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(parent: int) -> list[int]:
    """The processes whose parent is `parent` (the runtime's MinIO servers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == parent:
                out.append(int(entry.name))
    return out


def request_counts(cluster) -> collections.Counter:
    """apiserver_request_total summed by (verb, resource[/subresource])."""
    counts: collections.Counter = collections.Counter()
    for line in cluster.kubectl("get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{"):
            labels, value = line.rsplit(" ", 1)
            label = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            what = label.get("resource") or "(non-resource)"
            if label.get("subresource"):
                what += "/" + label["subresource"]
            counts[(label.get("verb", "?"), what)] += float(value)
    return counts


class Sampler:
    """The 1-minute load average and MemAvailable, every few seconds."""

    def __init__(self, every: float = 5.0):
        self.load: list[float] = []
        self.available_gb: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self.stop.wait(every):
            self.load.append(float(Path("/proc/loadavg").read_text().split()[0]))
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    self.available_gb.append(int(line.split()[1]) / 2**20)

    def figures(self) -> dict:
        self.stop.set()
        return {"load_average_1m_mean": round(statistics.mean(self.load or [0]), 2),
                "load_average_1m_max": max(self.load or [0]),
                "mem_available_gb_min": round(min(self.available_gb or [0]), 1)}


# -- the developers ------------------------------------------------------------

@dataclass
class Developer:
    index: int
    tree: Path
    proc: subprocess.Popen | None = None
    out: list = field(default_factory=list)     # (time, line) of stdout
    err: list = field(default_factory=list)     # (time, line) of stderr

    @property
    def name(self) -> str:
        return f"dev-{self.index:02}"

    def edit(self, value: int, staging: Path) -> float:
        """Rewrite the manifest as an editor that saves by rename does."""
        temp = staging / self.name
        temp.write_text(MANIFEST.format(name=self.name, value=value))
        os.replace(temp, self.tree / "deploy" / "cm.yaml")
        return time.time()

    def watch(self, ns: str, env: dict) -> None:
        # SIGINT as a terminal gives it, even when the bench runs in the background
        self.proc = subprocess.Popen(
            [EXE, "sync", self.name, "-n", ns, "--watch"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=_collect, args=(stream, lines), daemon=True).start()

    @property
    def errors(self) -> list[str]:
        said = [line for _, line in self.out if " error: " in line]
        return said + [line for _, line in self.err if line.strip()]


def _collect(stream, lines: list) -> None:
    for line in stream:
        lines.append((time.time(), line.rstrip("\n")))


def start_sessions(devs: list[Developer], ns: str, env: dict, batch: int) -> dict:
    """`up --no-wait` for every developer, `batch` at a time; the failed ones
    are dropped from `devs`."""
    def up(dev: Developer) -> tuple[Developer, float, str]:
        start = time.time()
        proc = subprocess.run([EXE, "up", str(dev.tree), "-n", ns, "--name", dev.name,
                               "--path", "deploy", "--no-wait"], env=env, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return dev, time.time() - start, proc.stderr.strip() if proc.returncode else ""

    start = time.time()
    with ThreadPoolExecutor(batch) as pool:
        outcomes = list(pool.map(up, devs))
    failed = {dev.name: why for dev, _, why in outcomes if why}
    devs[:] = [dev for dev in devs if dev.name not in failed]
    took = [t for _, t, why in outcomes if not why]
    return {"sessions_started": len(devs), "up_failed": failed,
            "up_s_median": round(statistics.median(took or [0]), 2),
            "up_s_max": round(max(took or [0]), 2), "all_up_s": round(time.time() - start, 1)}


def await_first_cycles(devs: list[Developer]) -> float:
    """Until every watch has printed its first cycle (or died)."""
    start = time.time()
    while time.time() - start < READY:
        if all(len(d.out) >= 2 or d.proc.poll() is not None for d in devs):
            break
        time.sleep(0.5)
    return time.time() - start


class Landed:
    """One watch of the namespace's ConfigMaps: when each value first showed."""

    def __init__(self, kube, ns: str):
        from kubectl_gitops_run.adapters.informer import Informer
        from kubectl_gitops_run.core.resources import path
        self.seen: dict[tuple[str, int], float] = {}
        self.failures: list[str] = []
        self.informer = Informer(kube, "ConfigMap", "v1", path("ConfigMap", ns),
                                 reset=lambda items: [self._note(o) for o in items],
                                 event=lambda _, obj: self._note(obj), failed=self._failed)

    def _note(self, obj: dict) -> None:
        value = (obj.get("data") or {}).get("v")
        if value is not None and value.isdigit():
            self.seen.setdefault((obj["metadata"]["name"], int(value)), time.time())

    def _failed(self, message: str | None) -> None:
        if message:
            self.failures.append(message)

    def has(self, name: str, value: int) -> bool:
        return (name, value) in self.seen


def edit_loop(devs: list[Developer], rounds: int, every: float, staging: Path) -> dict:
    """Each developer's edits, `every` s apart, the developers staggered."""
    plan = sorted((r * every + i * every / len(devs), r + 1, i)
                  for r in range(rounds) for i in range(len(devs)))
    start, writes = time.time(), {}
    for offset, value, i in plan:
        time.sleep(max(0.0, start + offset - time.time()))
        writes[(devs[i].name, value)] = devs[i].edit(value, staging)
    return writes


def drain(landed: Landed, devs: list[Developer], rounds: int) -> float:
    """Until every developer's last value landed, or DRAIN s."""
    start = time.time()
    while time.time() - start < DRAIN:
        if all(landed.has(d.name, rounds) or d.proc.poll() is not None for d in devs):
            break
        time.sleep(0.2)
    return time.time()


def latencies(writes: dict, landed: Landed) -> dict:
    """Edit-to-applied of each edit that showed; an edit whose value never
    showed but a later one did was superseded (watch mode syncs the newest
    tree); one after which nothing showed was lost."""
    took, superseded, lost = [], 0, []
    newest = collections.defaultdict(int)
    for name, value in landed.seen:
        newest[name] = max(newest[name], value)
    for (name, value), written in writes.items():
        if landed.has(name, value):
            took.append(landed.seen[(name, value)] - written)
        elif newest[name] > value:
            superseded += 1
        else:
            lost.append(f"{name}={value}")
    out = {"edits": len(writes), "applied": len(took), "superseded": superseded,
           "never_applied": lost}
    if took:
        out.update(p50_s=round(statistics.median(took), 3),
                   p95_s=round(percentile(took, 95), 3), max_s=round(max(took), 3))
    return out


# -- the run -------------------------------------------------------------------

def rates(before: collections.Counter, after: collections.Counter, seconds: float) -> dict:
    delta = after - before
    by_verb: collections.Counter = collections.Counter()
    for (verb, _), n in delta.items():
        by_verb[verb] += n
    return {"requests_per_s": round(sum(delta.values()) / seconds, 1),
            "by_verb_per_s": {v: round(n / seconds, 2) for v, n in by_verb.most_common()},
            "top_per_s": {f"{v} {w}": round(n / seconds, 2)
                          for (v, w), n in delta.most_common(12)}}


def plugin_requests(audit_log: Path, start: float, end: float, devs: int) -> dict:
    events = api_requests.requests_between(audit_log, start, end)
    minutes = (end - start) / 60
    return {"requests": len(events),
            "per_session_per_minute": round(len(events) / devs / minutes, 1),
            "by": dict(collections.Counter(api_requests.breakdown(events)).most_common(10))}


def processes(devs: list[Developer], cluster) -> dict[str, int]:
    pids = {d.name: d.proc.pid for d in devs if d.proc.poll() is None}
    pids.update({n: p for n, p in cluster.state.pids.items() if n in COMPONENTS})
    runtime = cluster.state.pids.get("bucket-runtime")
    pids.update({f"minio-{pid}": pid for pid in children(runtime)} if runtime else {})
    return pids


def cpu_use(before: dict[str, float], after: dict[str, float], seconds: float,
            devs: list[Developer]) -> dict:
    used = {n: after[n] - before[n] for n in after if n in before}
    mine = [used[d.name] for d in devs if d.name in used]
    return {"plugin_cpu_s_per_session_median": round(statistics.median(mine or [0]), 2),
            "plugin_cpu_s_per_session_max": round(max(mine or [0]), 2),
            "plugin_cpu_percent_of_a_core_median": round(
                100 * statistics.median(mine or [0]) / seconds, 2),
            "plugin_cpu_percent_of_a_core_all_sessions": round(100 * sum(mine) / seconds, 1),
            "minio_cpu_percent_all": round(100 * sum(
                v for n, v in used.items() if n.startswith("minio-")) / seconds, 1),
            "component_cpu_percent": {n: round(100 * used[n] / seconds, 1)
                                      for n in COMPONENTS if n in used}}


def snapshot_cpu(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = cpu_seconds(pid)
        except OSError:
            pass    # it ended
    return out


def memory(pids: dict[str, int], devs: list[Developer]) -> dict:
    def rss(names):
        sizes = []
        for n in names:
            try:
                sizes.append(rss_mb(pids[n]))
            except OSError:
                pass
        return sizes
    minio = rss([n for n in pids if n.startswith("minio-")])
    watches = rss([d.name for d in devs if d.name in pids])
    return {"minio_processes": len(minio), "minio_rss_mb_median": round(statistics.median(
        minio or [0])), "minio_rss_mb_total": round(sum(minio)),
            "watch_rss_mb_median": round(statistics.median(watches or [0])),
            "watch_rss_mb_total": round(sum(watches)),
            "component_rss_mb": {n: round(v) for n, v in zip(
                [n for n in COMPONENTS if n in pids], rss([n for n in COMPONENTS if n in pids]))}}


def stop_watches(devs: list[Developer]) -> dict:
    """Ctrl-C each watch; the ones that died before are reported apart."""
    died = {d.name: d.proc.returncode for d in devs if d.proc.poll() is not None}
    for d in devs:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGINT)
    codes, hung = collections.Counter(), []
    for d in devs:
        try:
            codes[d.proc.wait(30)] += 1
        except subprocess.TimeoutExpired:
            hung.append(d.name)
            d.proc.kill()
            d.proc.wait()
    return {"died_during_run": died, "exit_codes_after_ctrl_c": dict(codes),
            "ignored_ctrl_c_30s": hung}


def broke(devs: list[Developer], landed: Landed) -> dict:
    said = [(d.name, line) for d in devs for line in d.errors]
    return {"error_lines": len(said), "error_samples": [f"{n}: {line}" for n, line in said[:8]],
            "bench_watch_failures": landed.failures[:3]}


def developers_run(cluster, ns: str, tmp: Path, kube, args) -> dict:
    devs = [Developer(i, tmp / f"dev-{i:02}") for i in range(args.developers)]
    for dev in devs:
        (dev.tree / "deploy").mkdir(parents=True)
        (dev.tree / "deploy" / "cm.yaml").write_text(MANIFEST.format(name=dev.name, value=0))
    staging = tmp / "staging"
    staging.mkdir()
    env = dict(cluster.env(), KUBECONFIG=str(cluster.developer_kubeconfig()))
    out: dict = {"developers": args.developers, "minutes": args.minutes, "every_s": args.every}
    out["setup"] = start_sessions(devs, ns, env, args.batch)
    print(json.dumps(out), file=sys.stderr, flush=True)
    landed = Landed(kube, ns)
    landed.informer.start()
    sampler = Sampler()
    try:
        for dev in devs:
            dev.watch(ns, env)
        out["setup"]["first_cycles_s"] = round(await_first_cycles(devs), 1)
        out.update(measured_window(cluster, devs, landed, sampler, staging, args))
    finally:
        out["stopping"] = stop_watches(devs)
        landed.informer.close()
    out["broke"] = broke(devs, landed)
    return out


def measured_window(cluster, devs, landed, sampler, staging: Path, args) -> dict:
    rounds = max(1, round(args.minutes * 60 / args.every))
    sampler.thread.start()
    pids = processes(devs, cluster)
    counts, cpu, start = request_counts(cluster), snapshot_cpu(pids), time.time()
    writes = edit_loop(devs, rounds, args.every, staging)
    end = drain(landed, devs, rounds)
    counts_after, cpu_after = request_counts(cluster), snapshot_cpu(pids)
    seconds = end - start
    return {"window_s": round(seconds, 1), "machine": sampler.figures(),
            "edit_to_applied": latencies(writes, landed),
            "api_server": rates(counts, counts_after, seconds),
            "plugin_requests": plugin_requests(cluster.audit_log, start, end, len(devs)),
            "cpu": cpu_use(cpu, cpu_after, seconds, devs), "memory": memory(pids, devs)}


def one_developer(cluster, ns: str, tmp: Path, idle: float) -> dict:
    """bench.api_requests, as it is: one `up`, one `sync`, an idle watch."""
    app = tmp / "app"
    shutil.copytree(ROOT / "examples" / "hello", app)
    plugin = api_requests.Plugin(ROOT, cluster.developer_kubeconfig(), ns)
    return api_requests.measure(plugin, app, cluster.audit_log, idle)


def delete_namespace(cluster, ns: str) -> float:
    start = time.time()
    cluster.kubectl("delete", "namespace", ns, "--timeout=300s", check=False)
    return round(time.time() - start, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--developers", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=1)
    ap.add_argument("--every", type=float, default=10)
    ap.add_argument("--batch", type=int, default=4, help="`up`s at a time")
    ap.add_argument("--idle", type=float, default=60, help="idle watch seconds; 0: skip")
    args = ap.parse_args()
    from kubectl_gitops_run.adapters.kube import connect
    figures: dict = {"load_average_at_start": Path("/proc/loadavg").read_text().split()[:3]}
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        kube = connect(str(cluster.state.kubeconfig), None, ns)
        if args.idle:
            figures["one_developer"] = one_developer(cluster, ns, tmp, args.idle)
            print(json.dumps(figures["one_developer"]), file=sys.stderr, flush=True)
        try:
            figures["many"] = developers_run(cluster, ns, tmp, kube, args)
        finally:    # local_cluster deletes it only after a run that ended well
            figures.setdefault("many", {})["namespace_deleted_s"] = delete_namespace(
                cluster, ns)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
