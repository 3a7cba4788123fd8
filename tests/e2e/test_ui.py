"""`kubectl gitops-run ui` end to end: the real command against the real
control plane, driven in Debian's chromium by Playwright (no browser
download). Screenshots of the list and of a detail page go to docs/.

The printed URL logs in once: one browser context uses it and every page of
the module opens in that context (its cookie); raw HTTP checks take the
cookie from there."""
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


@pytest.fixture(scope="module")
def login(browser, ui_url):
    """The one use of the printed URL: (the logged-in context, where the
    login landed, the cookie header)."""
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    p = context.new_page()
    resp = p.goto(ui_url)
    assert resp.status == 200
    landed = p.url
    p.close()
    (cookie,) = context.cookies()
    yield context, landed, f"{cookie['name']}={cookie['value']}"
    context.close()


@pytest.fixture
def page(login, ui_url):
    p = login[0].new_page()
    p.set_default_timeout(TIMEOUT_MS)
    p.goto(base(ui_url))
    yield p
    p.close()


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


def file_row(page, path: str):
    return page.locator(f'#files-table tr[data-file="{path}"]')


def test_edit_and_sync_show_in_the_history_and_files_without_reload(page, sessions, cluster):
    ns, app = sessions[0]
    page.goto(base(page.url) + f"#/s/{ns}/hello")
    page.wait_for_selector('#inventory tr[data-object="ConfigMap ' + ns + '/hello"]')
    # up's first sync is in the history: the three files of examples/hello, added
    expect(page.locator("#history tbody tr").last).to_contain_text("+3 ~0 -0")
    before = history_rows(page)
    # the snapshot's files, from the bucket server: all added by that first sync
    expect(file_row(page, "configmap.yaml")).to_contain_text("added")
    assert page.locator("#files-table tbody tr:not(.generated)").count() == 3
    (app / "configmap.yaml").write_text((app / "configmap.yaml").read_text()
                                        .replace("Hello from", "Hi from"))
    ok(cluster, "sync", "hello", "-n", ns)
    expect(page.locator("#history tbody tr")).to_have_count(before + 1, timeout=TIMEOUT_MS)
    assert "+0 ~1 -0" in page.locator("#history tbody tr").first.inner_text()
    # the new revision reads the files again: only the edited one changed in the last sync
    expect(file_row(page, "configmap.yaml")).to_contain_text("changed")
    expect(file_row(page, "deployment.yaml")).not_to_contain_text("added")
    size = (app / "configmap.yaml").stat().st_size
    assert f"{size} B" in file_row(page, "configmap.yaml").inner_text()
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


def open_detail(page, ns: str, name: str) -> None:
    page.goto(base(page.url) + f"#/s/{ns}/{name}")
    page.wait_for_selector("#history")


def copy_example(tmp_path, example: str) -> Path:
    app = tmp_path / example
    shutil.copytree(REPO / "examples" / example, app)
    return app


def test_a_manifest_flux_rejects_shows_its_message_and_the_object(page, cluster, namespace,
                                                                    tmp_path):
    app = copy_example(tmp_path, "hello")
    ok(cluster, "up", str(app), "-n", namespace)
    # valid YAML, but not a valid object: the API server rejects Flux's dry-run
    (app / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n"
                                  "data:\n  - not a map\n")
    res = run_plugin(cluster, "sync", "hello", "-n", namespace, "--timeout", "90s")
    assert res.returncode == 1, res.stdout + res.stderr
    open_detail(page, namespace, "hello")
    failing = page.locator("#failing")
    expect(failing).to_contain_text("ConfigMap", timeout=TIMEOUT_MS)
    expect(failing).to_contain_text("bad")
    message = page.locator("#conditions-Kustomization").inner_text()
    assert "ConfigMap" in message and "bad" in message, message
    expect(page.locator("h1 .health")).to_have_text("Failed")
    assert "SyncFailed" in page.locator("#history tbody tr").first.inner_text()
    page.goto(base(page.url))
    row = page.locator(f'tr[data-session="{namespace}/hello"]')
    expect(row).to_contain_text("last sync failed")
    expect(row.locator("td.health")).to_contain_text("Failed")


def test_a_crashing_pod_shows_crashloopbackoff(page, cluster, namespace, tmp_path):
    app = copy_example(tmp_path, "web")
    deployment = app / "deployment.yaml"
    deployment.write_text(deployment.read_text() + (
        "            - name: ECHO_EXIT\n              value: \"1\"\n"))   # devcluster/echo.py
    ok(cluster, "up", str(app), "-n", namespace, "--no-wait")
    open_detail(page, namespace, "web")
    workload = page.locator(f'#inventory tr[data-object="Deployment.apps {namespace}/web"]')
    expect(workload).to_contain_text("CrashLoopBackOff", timeout=TIMEOUT_MS)
    expect(workload.locator("td.health")).not_to_have_text("Current")
    page.screenshot(path=str(REPO / "docs" / "ui-crashloop.png"), full_page=True)


CHART = {"Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
         "values.yaml": "message: one\n",
         "templates/configmap.yaml": (
             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hello\n"
             "data:\n  message: {{ .Values.message | quote }}\n")}


def test_a_helm_release_session_shows_its_release_and_inventory(page, cluster, namespace,
                                                               tmp_path):
    chart = tmp_path / "chart"
    for rel, text in CHART.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)
    ok(cluster, "up", str(chart), "-n", namespace)
    open_detail(page, namespace, "chart")
    expect(page.locator("#conditions-HelmRelease")).to_contain_text("Ready", timeout=TIMEOUT_MS)
    expect(page.locator("#release")).to_contain_text("deployed")
    expect(page.locator(f'#inventory tr[data-object="ConfigMap {namespace}/chart-hello"]')) \
        .to_contain_text("Current")
    assert "no Kustomization" not in page.inner_text("main")
    assert page.locator("#conditions-Kustomization").count() == 0
    expect(page.locator("h1 .health")).to_have_text("Current")
    page.click("#action-reconcile")         # the HelmRelease, not a Kustomization
    expect(page.locator("#notice")).to_contain_text("Bucket and HelmRelease", timeout=TIMEOUT_MS)


def test_the_forwards_of_a_running_loop_show_and_go(page, cluster, namespace, tmp_path):
    from tests.e2e.test_forward import Loop
    app = copy_example(tmp_path, "web")
    ok(cluster, "up", str(app), "-n", namespace)
    loop = Loop(cluster, "forward", "web", "-n", namespace, "svc/web", ":80")
    try:
        url = loop.saw("forwarding http://127.0.0.1:").split()[1]
        open_detail(page, namespace, "web")
        row = page.locator("#forwards-table tbody tr")
        expect(row).to_contain_text(url, timeout=TIMEOUT_MS)
        expect(row).to_contain_text("svc/web:80")
        expect(row).to_contain_text("ready")
        assert page.locator("#forwards-table a").get_attribute("href").rstrip("/") == url
        page.goto(base(page.url))
        expect(page.locator(f'tr[data-session="{namespace}/web"] td.forwards')) \
            .to_contain_text(url)
    finally:
        assert loop.stop() == 0, "".join(loop.err)
    open_detail(page, namespace, "web")
    expect(page.locator("#forwards-table")).to_have_count(0, timeout=TIMEOUT_MS)


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


def test_security_in_the_browser(page, browser, ui_url, login):
    assert "token=" not in login[1] and login[1] == base(ui_url)    # gone from the address bar
    assert page.evaluate("document.cookie") == ""      # HttpOnly
    resp = page.goto(base(ui_url))
    assert resp.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    stranger = browser.new_context().new_page()
    assert stranger.goto(base(ui_url)).status == 401
    # the printed URL worked once, for the login above: another browser gets nothing
    second = stranger.goto(ui_url)
    assert second.status == 401 and "used already" in stranger.content()
    assert stranger.context.cookies() == []
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


def test_security_rules_of_the_running_command(ui_url, sessions, cluster, login):
    host = urlsplit(ui_url).netloc
    cookie = login[2]
    again, _ = raw(ui_url, "GET", "/?" + urlsplit(ui_url).query, {"Host": host})
    assert again.status == 401 and again.getheader("Set-Cookie") is None     # used once already
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
        f"/api/plan?namespace={ns}&name=hello", f"/api/files?namespace={ns}&name=hello"))
    assert b"configmap.yaml" in seen
    assert b"hello" in seen
    for value in values:
        assert value.encode() not in seen and secret["data"] and len(value) >= 16
