"""Figures of `kubectl gitops-run ui` (issue 10, targets in brackets).

    .venv/bin/python -m bench.ui [--sessions 50] [--real 2] [--changes 20] [--state-dir DIR]

- change to page: an Event recorded on a real session's Bucket (as a sync
  does) until the detail view pushed over server-sent events shows it  [p50 <= 1 s]
- first paint: chromium (Debian's, driven by Playwright) from navigation to
  every session row drawn, with the --real sessions alone and then with
  --sessions in all, in the same run                                    [<= 1 s]
- memory: the `ui` process's RSS with no page open, and with three tabs
  open (the list and two detail pages) once --sessions exist.

Only --real sessions are started with `up` (each runs a bucket server: one
MinIO process on the dev cluster's runtime, about 100 MiB; this 2-core machine
shared by others cannot hold 50). The others are their labelled objects as
`up` makes them, with nothing running (bench.startup.fake_sessions: Bucket and
Kustomization suspended, Deployment at 0 replicas), each given HISTORY sync
Events, so the page lists, groups and watches 50 sessions' objects. Prints
one JSON document.
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
from bench.startup import fake_sessions
from kubectl_gitops_run.core import history

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello"
HISTORY = 3             # sync Events per fake session
PAINT_RUNS = 5


def start_ui(env: dict, ns: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([EXE, "ui", "-n", ns, "--no-browser"], env=env,
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def login(url: str) -> tuple[str, str]:
    """Trade the URL's token (good once) for the cookie: (name, value)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.request("GET", "/?" + parts.query)
    resp = conn.getresponse()
    resp.read()
    name, _, value = resp.getheader("Set-Cookie").split(";")[0].partition("=")
    return name, value


def stream(url: str, cookie: tuple[str, str], query: str):
    """An SSE client with the cookie: yields each view."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.request("GET", f"/api/events?{query}", headers={"Cookie": "=".join(cookie)})
    resp = conn.getresponse()
    while True:
        line = resp.fp.readline()
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


def sync_event(ns: str, session: str, i: int) -> dict:
    return history.sync_event(ns, session, now=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              who="bench@ui", bucket_uid=None, counts=(i, 0, 0),
                              revision="sha256:" + "0" * 64)


def change_latency(cluster, url: str, cookie, ns: str, changes: int) -> list[float]:
    views = stream(url, cookie, f"view=session&namespace={ns}&name=r0")
    count = len(next(views)["history"])
    times = []
    for i in range(changes):
        start = time.perf_counter()
        cluster.kubectl("create", "-f", "-", input=json.dumps(sync_event(ns, "r0", i)))
        while len(next(views)["history"]) <= count:
            pass
        times.append(time.perf_counter() - start)
        count += 1
    return times


def paint_times(page, rows: int) -> list[float]:
    times = []
    for _ in range(PAINT_RUNS):
        start = time.perf_counter()
        page.reload()
        page.locator("#sessions tbody tr").nth(rows - 1).wait_for()
        times.append(time.perf_counter() - start)
    assert page.locator("#sessions tbody tr").count() == rows
    return times


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fill(cluster, ns: str, count: int) -> None:
    """`count` sessions' objects with nothing running, HISTORY syncs each."""
    fake_sessions(str(cluster.state.kubeconfig), ns, count)
    events = [sync_event(ns, f"s{i:02}", j) for i in range(count) for j in range(HISTORY)]
    cluster.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                           "items": events}))


def measure(cluster, url: str, proc, ns: str, args) -> dict:
    from playwright.sync_api import sync_playwright
    cookie = login(url)
    base = url.split("?")[0]
    out = {"rss_mib_no_tab": round(rss_kib(proc.pid) / 1024, 1),
           "change_to_page_s": change_latency(cluster, url, cookie, ns, args.changes)}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                     args=["--no-sandbox"])
        context = browser.new_context()        # holds the cookie for every tab
        context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": base}])
        page = context.new_page()
        page.goto(base)
        out["first_paint_real_s"] = paint_times(page, args.real)
        fill(cluster, ns, args.sessions - args.real)
        page.locator("#sessions tbody tr").nth(args.sessions - 1).wait_for(timeout=120_000)
        out["first_paint_all_s"] = paint_times(page, args.sessions)
        page.close()
        tabs = [context.new_page() for _ in range(3)]
        for tab, where in zip(tabs, ("", f"#/s/{ns}/r0", f"#/s/{ns}/s00")):
            tab.goto(base + where)
            tab.locator("#sessions tbody tr, #history").first.wait_for()
        time.sleep(2)       # the pushes that follow the opening settle
        out["rss_mib_three_tabs"] = round(rss_kib(proc.pid) / 1024, 1)
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=50, help="sessions in all")
    ap.add_argument("--real", type=int, default=2, help="of which started with `up`")
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        env = cluster.env()
        for i in range(args.real):
            app = tmp / f"r{i}"
            shutil.copytree(HELLO, app)
            subprocess.run([EXE, "up", str(app), "-n", ns, "--name", f"r{i}", "--no-wait"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        proc, url = start_ui(env, ns)
        try:
            got = measure(cluster, url, proc, ns, args)
        finally:
            proc.send_signal(2)
            proc.wait(30)
    latency = got.pop("change_to_page_s")
    print(json.dumps({
        "sessions": args.sessions, "real": args.real,
        "change_to_page_s": {**spread(latency), "p50": round(percentile(latency, 50), 3),
                             "p95": round(percentile(latency, 95), 3)},
        **{k: spread(v) if isinstance(v, list) else v for k, v in got.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
