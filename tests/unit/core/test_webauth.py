"""The ui server's security rules, as pure checks (core/webauth.py)."""
from __future__ import annotations

from kubectl_gitops_run.core import webauth


def test_secrets_are_random_and_long():
    a, b = webauth.new_secret(), webauth.new_secret()
    assert a != b
    assert len(a) * 6 >= 128          # url-safe base64: 6 bits a character


def test_only_our_own_host_names():
    assert webauth.host_ok("127.0.0.1:8080", 8080)
    assert webauth.host_ok("localhost:8080", 8080)
    for bad in ("evil.example:8080", "127.0.0.1:8081", "127.0.0.1", "", None,
                "localhost.evil.example:8080"):
        assert not webauth.host_ok(bad, 8080), bad


def test_cookie_is_httponly_strict_and_per_port():
    header = webauth.set_cookie(8080, "v")
    assert header.startswith("gitops_run_ui_8080=v;")
    assert "HttpOnly" in header and "SameSite=Strict" in header
    assert webauth.cookie_value("a=b; gitops_run_ui_8080=v", 8080) == "v"
    assert webauth.cookie_value("gitops_run_ui_9090=v", 8080) is None
    assert webauth.cookie_value('bad"cookie', 8080) is None


def test_same_is_exact():
    assert webauth.same("abc", "abc")
    assert not webauth.same("abd", "abc") and not webauth.same(None, "abc")


def test_post_needs_our_origin_and_json():
    ok = {"host": "127.0.0.1:80", "origin": "http://127.0.0.1:80",
          "content-type": "application/json; charset=utf-8"}
    assert webauth.post_problem(ok, 80) is None
    no_origin = {k: v for k, v in ok.items() if k != "origin"}
    assert "Origin" in webauth.post_problem(no_origin, 80)
    assert "cross-origin" in webauth.post_problem({**ok, "origin": "http://evil.example"}, 80)
    assert "cross-origin" in webauth.post_problem({**ok, "origin": "http://localhost:80"}, 80)
    assert "cross-origin" in webauth.post_problem({**ok, "origin": "null"}, 80)
    for form in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        assert "application/json" in webauth.post_problem({**ok, "content-type": form}, 80)


def test_csp_allows_only_our_own_files_and_no_framing():
    assert webauth.SECURITY_HEADERS["Content-Security-Policy"] == \
        "default-src 'self'; frame-ancestors 'none'"
    assert not any(h.lower().startswith("access-control") for h in webauth.SECURITY_HEADERS)


def test_the_login_token_is_good_once():
    token = webauth.LoginToken()
    assert len(token.value) * 6 >= 128
    assert not token.redeem("wrong") and not token.redeem(None)
    assert token.redeem(token.value)
    assert not token.redeem(token.value)
