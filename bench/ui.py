"""Figures of `kubectl gitops-run ui` (issue 10, targets in brackets).

    .venv/bin/python -m bench.ui [--sessions 5] [--changes 20] [--state-dir DIR]

- change to page: an Event recorded on a session's Bucket (as a sync does)
  until the detail view pushed over server-sent events shows it  [p50 <= 1 s]
- first paint: chromium (Debian's, driven by Playwright) from navigation to
  every session row drawn, with --sessions sessions              [<= 1 s]
- memory: the `ui` process's RSS with three open tabs (plus the timing tab).

Prints one JSON document. The issue asks for 50 sessions; the default here
is smaller (each `up` takes seconds on the shared dev cluster).
"""
from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import EXE, local_cluster, percentile, spread
from kubectl_gitops_run.core import history

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello"


def start_ui(env: dict, ns: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([EXE, "ui", "-n", ns, "--no-browser"], env=env,
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def stream(url: str, query: str):
    """An SSE client logged in with the URL's token: yields each view."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.request("GET", "/?" + parts.query)
    resp = conn.getresponse()
    resp.read()
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.request("GET", f"/api/events?{query}", headers={"Cookie": cookie})
    resp = conn.getresponse()
    while True:
        line = resp.fp.readline()
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


def change_latency(cluster, url: str, ns: str, changes: int) -> list[float]:
    views = stream(url, f"view=session&namespace={ns}&name=s0")
    count = len(next(views)["history"])
    times = []
    for i in range(changes):
        event = history.sync_event(ns, "s0", now=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   who="bench@ui", bucket_uid=None, counts=(i, 0, 0),
                                   revision="sha256:" + "0" * 64)
        start = time.perf_counter()
        cluster.kubectl("create", "-f", "-", input=json.dumps(event))
        while len(next(views)["history"]) <= count:
            pass
        times.append(time.perf_counter() - start)
        count += 1
    return times


def first_paint(url: str, sessions: int, runs: int = 5) -> tuple[list[float], int]:
    from playwright.sync_api import sync_playwright
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                     args=["--no-sandbox"])
        context = browser.new_context()        # holds the cookie for every tab
        page = context.new_page()
        page.goto(url)
        for _ in range(runs):
            start = time.perf_counter()
            page.reload()
            page.locator("#sessions tbody tr").nth(sessions - 1).wait_for()
            times.append(time.perf_counter() - start)
        tabs = [context.new_page() for _ in range(3)]
        for tab in tabs:
            tab.goto(url.split("?")[0])
            tab.locator("#sessions tbody tr").nth(sessions - 1).wait_for()
        rss = rss_kib(PROC.pid)
        browser.close()
    return times, rss


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


PROC: subprocess.Popen


def main() -> None:
    global PROC
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        env = cluster.env()
        for i in range(args.sessions):
            app = tmp / f"s{i}"
            shutil.copytree(HELLO, app)
            subprocess.run([EXE, "up", str(app), "-n", ns, "--name", f"s{i}", "--no-wait"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        PROC, url = start_ui(env, ns)
        try:
            latency = change_latency(cluster, url, ns, args.changes)
            paint, rss = first_paint(url, args.sessions)
        finally:
            PROC.send_signal(2)
            PROC.wait(30)
    print(json.dumps({
        "sessions": args.sessions,
        "change_to_page_s": {**spread(latency), "p50": round(percentile(latency, 50), 3),
                             "p95": round(percentile(latency, 95), 3)},
        "first_paint_s": spread(paint),
        "ui_rss_mib_three_tabs": round(rss / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
