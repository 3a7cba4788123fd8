"""Figures of port-forwards that follow a session's pods (issue 15, targets in brackets).

    .venv/bin/python -m bench.forward [--syncs 10] [--requests 100] [--state-dir DIR]

- ready to served: a sync changes the example app's env (examples/web); from
  the moment the new pod's Ready condition reaches a watch of the bench to the
  first request through `kubectl gitops-run forward` that the new pod answers,
  polled every POLL s                                          [p50 <= 0.5 s]
- added latency: wall time of one HTTP GET through our forward against one
  through a direct `kubectl port-forward` to the same Service, taken in turn
  (paired), on a new connection each and on one kept-alive connection
                                                               [<= 1.2x]

Prints one JSON document.
"""
from __future__ import annotations

import argparse
import http.client
import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from bench.common import EXE, local_cluster, percentile, spread

WEB = Path(__file__).resolve().parents[1] / "examples" / "web"
POLL = 0.02         # seconds between requests while waiting for the new pod


def get(port: int, conn: http.client.HTTPConnection | None = None) -> dict:
    """One GET /; on `conn` (kept alive) or on a new connection."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/")
        return json.loads(conn.getresponse().read())
    finally:
        if own:
            conn.close()


def set_greeting(tree: Path, value: str) -> None:
    path = tree / "deployment.yaml"
    text = path.read_text()
    start = text.index("value: ") + len("value: ")
    path.write_text(text[:start] + value + text[text.index("\n", start):])


def started(argv: list[str], env: dict, marker: str) -> tuple[subprocess.Popen, str]:
    """A long-running command, and its first output line holding `marker`."""
    proc = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    for line in proc.stdout:
        if marker in line:
            threading.Thread(target=proc.stdout.read, daemon=True).start()   # drain
            return proc, line
    raise RuntimeError(f"{argv[:2]} ended before printing {marker!r}")


class ReadyTimes:
    """When each pod's Ready=True reached a watch here (time.monotonic())."""

    def __init__(self, env: dict, ns: str):
        jsonpath = '{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}'
        self.proc = subprocess.Popen(["kubectl", "get", "pods", "-n", ns, "-l", "app=web",
                                      "--watch", "-o", f"jsonpath={jsonpath}"],
                                     env=env, text=True, stdout=subprocess.PIPE)
        self.times: dict[str, float] = {}
        self.seen: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            name, _, ready = line.strip().partition(" ")
            if ready == "True" and name not in self.times:
                self.times[name] = time.monotonic()
                self.seen.put(name)

    def close(self) -> None:
        self.proc.terminate()


def first_answer(port: int, greeting: str) -> tuple[dict, float]:
    """Poll through the forward until a pod with `greeting` answers: (answer, when)."""
    while True:
        try:
            answer = get(port)
            if answer["greeting"] == greeting:
                return answer, time.monotonic()
        except (OSError, http.client.HTTPException, ValueError):
            pass        # a connection to the old pod, dropped as it goes away
        time.sleep(POLL)


def ready_to_served(env: dict, ns: str, tree: Path, port: int, syncs: int) -> list[float]:
    ready = ReadyTimes(env, ns)
    out = []
    try:
        for i in range(syncs):
            value = f"bench-{i}"
            set_greeting(tree, value)
            subprocess.run([EXE, "sync", "web", "-n", ns, "--no-wait"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            answer, served = first_answer(port, value)
            while answer["pod"] not in ready.times:    # the watch may lag the forward's
                ready.seen.get(timeout=30)
            out.append(served - ready.times[answer["pod"]])
    finally:
        ready.close()
    return out


def paired_latency(ours: int, theirs: int, requests: int, keep_alive: bool) -> dict:
    """Seconds per GET through each forward, taken in turn."""
    conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=30) if keep_alive else None
             for p in (ours, theirs)}
    times: dict[int, list[float]] = {ours: [], theirs: []}
    for p in (ours, theirs):    # warm up: the first tunnel of each is not the figure
        get(p, conns[p])
    for _ in range(requests):
        for p in (ours, theirs):
            start = time.perf_counter()
            get(p, conns[p])
            times[p].append(time.perf_counter() - start)
    for conn in conns.values():
        if conn:
            conn.close()
    return {"ours": times[ours], "kubectl": times[theirs]}


def latency_figures(env: dict, ns: str, ours: int, requests: int) -> dict:
    kubectl, line = started(["kubectl", "port-forward", "-n", ns, "svc/web", ":http"], env,
                            "Forwarding from 127.0.0.1:")
    theirs = int(line.split("127.0.0.1:")[1].split()[0])
    try:
        out = {}
        for mode, keep in (("new connection", False), ("kept-alive connection", True)):
            runs = paired_latency(ours, theirs, requests, keep)
            ms = {k: spread([t * 1000 for t in v], 2) for k, v in runs.items()}
            ms["ratio of medians"] = round(ms["ours"]["median"] / ms["kubectl"]["median"], 2)
            out[mode] = ms
        return out
    finally:
        kubectl.terminate()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--syncs", type=int, default=10)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        env, tree = cluster.env(), tmp / "web"
        shutil.copytree(WEB, tree)
        subprocess.run([EXE, "up", str(tree), "-n", ns, "--name", "web"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        forward, line = started([EXE, "forward", "web", "-n", ns, "svc/web", ":http"], env,
                                "forwarding http://127.0.0.1:")
        port = int(line.split("127.0.0.1:")[1].split()[0])
        try:
            latency = latency_figures(env, ns, port, args.requests)
            served = ready_to_served(env, ns, tree, port, args.syncs) if args.syncs else [0.0]
        finally:
            forward.send_signal(signal.SIGINT)     # Ctrl-C: the record goes too
            forward.wait(30)
        print(json.dumps({
            "ready to served (s)": {**spread(served, 3), "p50": round(percentile(served, 50), 3),
                                    "all": [round(t, 3) for t in served]},
            "request latency (ms)": latency,
        }, indent=2))


if __name__ == "__main__":
    main()
