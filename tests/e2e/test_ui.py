"""`kubectl gitops-run ui` end to end: the real command against the real
control plane, driven in Debian's chromium by Playwright (no browser
download). Screenshots of the list and of a detail page go to docs/."""
from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import run_plugin

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 60_000


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("SKIPPING UI TESTS: playwright is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        pytest.skip("SKIPPING UI TESTS: no chromium (make ui-browser installs Debian's)")
    return sync_playwright


def ok(cluster, *args, cwd=None):
    res = run_plugin(cluster, *args, cwd=cwd)
    assert res.returncode == 0, f"{args}: rc={res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def sessions(cluster, tmp_path_factory):
    """Two sessions of examples/hello, in two namespaces: (namespace, app dir)."""
    made = []
    for i in (1, 2):
        ns = f"ui-{i}-{uuid.uuid4().hex[:5]}"
        cluster.kubectl("create", "namespace", ns)
        app = tmp_path_factory.mktemp(f"ui{i}") / "hello"
        shutil.copytree(HELLO, app)
        ok(cluster, "up", str(app), "-n", ns)
        made.append((ns, app))
    yield made
    for ns, _ in made:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def ui_url(cluster, sessions):
    exe = shutil.which("kubectl-gitops_run", path=str(Path(os.sys.executable).parent))
    proc = subprocess.Popen([exe, "ui", "-A", "--no-browser"], env=cluster.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if not url else url
    yield url
    proc.send_signal(2)             # Ctrl-C: a clean exit, code 0
    assert proc.wait(timeout=30) == 0, proc.stderr.read()


@pytest.fixture(scope="module")
def browser(ui_url):
    with _playwright()() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, ui_url):
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    p = context.new_page()
    p.set_default_timeout(TIMEOUT_MS)
    p.goto(ui_url)
    yield p
    context.close()


def base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def test_list_shows_two_sessions_in_two_namespaces(page, sessions):
    for ns, _ in sessions:
        page.wait_for_selector(f'tr[data-session="{ns}/hello"]')
    row = page.locator(f'tr[data-session="{sessions[0][0]}/hello"]')
    assert "Current" in row.inner_text() or "InProgress" in row.inner_text()
    page.select_option("#ns-filter", sessions[1][0])
    assert page.locator("#sessions tbody tr").count() == 1
    page.select_option("#ns-filter", "")
    page.screenshot(path=str(REPO / "docs" / "ui-list.png"))


def history_rows(page) -> int:
    return page.locator("#history tbody tr").count()


def expect(locator):
    # the page's CSP forbids eval: no wait_for_function, Playwright's own assertions
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(locator)


def test_edit_and_sync_show_in_the_history_without_reload(page, sessions, cluster):
    ns, app = sessions[0]
    page.goto(base(page.url) + f"#/s/{ns}/hello")
    page.wait_for_selector('#inventory tr[data-object="ConfigMap ' + ns + '/hello"]')
    before = history_rows(page)
    (app / "configmap.yaml").write_text((app / "configmap.yaml").read_text()
                                        .replace("Hello from", "Hi from"))
    ok(cluster, "sync", "hello", "-n", ns)
    expect(page.locator("#history tbody tr")).to_have_count(before + 1, timeout=TIMEOUT_MS)
    assert "+0 ~1 -0" in page.locator("#history tbody tr").first.inner_text()
    page.screenshot(path=str(REPO / "docs" / "ui-detail.png"), full_page=True)


def test_sync_now_and_reconcile_buttons(page, sessions):
    ns, app = sessions[0]
    page.goto(base(page.url) + f"#/s/{ns}/hello")
    (app / "configmap.yaml").write_text((app / "configmap.yaml").read_text() + "  extra: x\n")
    page.click("#action-sync")
    expect(page.locator("#notice")).to_contain_text("applied", timeout=TIMEOUT_MS)
    assert "~1" in page.inner_text("#notice")
    page.click("#action-reconcile")
    expect(page.locator("#notice")).to_contain_text("asked Flux", timeout=TIMEOUT_MS)


def test_delete_removes_the_session(page, sessions, cluster):
    ns, _ = sessions[1]
    page.goto(base(page.url) + f"#/s/{ns}/hello")
    page.click("#action-delete")
    page.wait_for_selector("#confirm[open]")
    assert f"{ns}/hello" in page.inner_text("#confirm-title")
    assert "Deployment" in page.inner_text("#confirm-list")
    page.click("#confirm-delete")
    page.wait_for_selector("#gone")
    assert cluster.kubectl("get", "kustomizations", "-n", ns, "-o", "name").strip() == ""
    assert cluster.kubectl("get", "deployment", "hello", "-n", ns, "--ignore-not-found") == ""


def test_security_in_the_browser(page, browser, ui_url):
    assert "token=" not in page.url                    # gone from the address bar
    assert page.evaluate("document.cookie") == ""      # HttpOnly
    resp = page.goto(base(ui_url))
    assert resp.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    stranger = browser.new_context().new_page()
    assert stranger.goto(base(ui_url)).status == 401
    stranger.context.close()


def raw(url: str, method: str, path: str, headers: dict, body: bytes = b""):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest(method, path, skip_host=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.fp.readline() if resp.getheader("Content-Type") == "text/event-stream" \
        else resp.read()
    return resp, data


def test_security_rules_of_the_running_command(ui_url, sessions, cluster):
    host = urlsplit(ui_url).netloc
    login, _ = raw(ui_url, "GET", "/?" + urlsplit(ui_url).query, {"Host": host})
    cookie = login.getheader("Set-Cookie").split(";")[0]
    ns = sessions[0][0]
    assert raw(ui_url, "GET", "/", {"Host": host})[0].status == 401
    assert raw(ui_url, "GET", "/", {"Host": "rebound.example", "Cookie": cookie})[0].status == 403
    body = json.dumps({"namespace": ns, "name": "hello"}).encode()
    post = {"Host": host, "Cookie": cookie, "Origin": f"http://{host}",
            "Content-Type": "application/json"}
    for bad in ({"Origin": "http://evil.example"}, {"Content-Type": "text/plain"}):
        assert raw(ui_url, "POST", "/api/reconcile", {**post, **bad}, body)[0].status == 403
    # S3 credentials and Secret contents never reach the browser
    secret = json.loads(cluster.kubectl("get", "secret", "gitops-run-hello", "-n", ns, "-o", "json"))
    values = [base64.b64decode(v).decode() for v in secret["data"].values()]
    seen = b"".join(raw(ui_url, "GET", path, {"Host": host, "Cookie": cookie})[1] for path in (
        "/api/events?view=list", f"/api/events?view=session&namespace={ns}&name=hello",
        f"/api/plan?namespace={ns}&name=hello"))
    assert b"hello" in seen
    for value in values:
        assert value.encode() not in seen and secret["data"] and len(value) >= 16
