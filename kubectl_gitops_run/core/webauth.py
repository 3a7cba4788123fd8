"""The `ui` server's security rules, as pure checks of a request's headers.

The page is a local server that can delete sessions, so any other site the
browser visits must get nothing from it: a secret in the printed URL, traded
for an HttpOnly SameSite=Strict cookie; a Host header naming us (no DNS
rebinding); POSTs only from our own origin and with a JSON body (no
cross-site form posts); no CORS; a CSP that allows only our own files and no
framing. The adapter (adapters/webserver.py) applies them to every request.
"""
from __future__ import annotations

import hmac
import secrets
import threading
from http.cookies import CookieError, SimpleCookie

TOKEN_BYTES = 32            # 256 bits: far past guessing, in the URL and the cookie
CSP = "default-src 'self'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",      # never send the URL (and its token) elsewhere
    "Cache-Control": "no-store",
}
MAX_BODY = 64 * 1024


def new_secret() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class LoginToken:
    """The secret of the printed URL, good for one login: the first browser
    to use it gets the cookie, a second use (another browser, a link preview,
    a leaked shell history) gets nothing."""

    def __init__(self, value: str | None = None):
        self.value = value or new_secret()
        self._used = False
        self._lock = threading.Lock()

    def redeem(self, given: str | None) -> bool:
        with self._lock:
            if self._used or not same(given, self.value):
                return False
            self._used = True
            return True


def cookie_name(port: int) -> str:
    """Cookies are per host, not per port: each server its own name, so two
    `ui` servers on one machine do not log each other out."""
    return f"gitops_run_ui_{port}"


def same(given: str | None, secret: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


def allowed_hosts(port: int) -> set[str]:
    return {f"127.0.0.1:{port}", f"localhost:{port}"}


def host_ok(host: str | None, port: int) -> bool:
    """Only our own name reaches us: a DNS-rebound name is refused (403)."""
    return (host or "").strip().lower() in allowed_hosts(port)


def cookie_value(header: str | None, port: int) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(cookie_name(port))
    return morsel.value if morsel is not None else None


def set_cookie(port: int, value: str) -> str:
    """The Set-Cookie header: the page's scripts cannot read it, and no
    request from another site carries it."""
    return f"{cookie_name(port)}={value}; HttpOnly; SameSite=Strict; Path=/"


def post_problem(headers: dict[str, str], port: int) -> str | None:
    """Why a POST must be refused (403), or None. `headers`: lower-case names."""
    origin = headers.get("origin")
    if origin is None:
        return "a POST needs an Origin header"
    if origin.lower() not in {f"http://{h}" for h in allowed_hosts(port)} \
            or origin.lower() != f"http://{headers.get('host', '').lower()}":
        return f"cross-origin POST refused (Origin {origin!r})"
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return "a POST needs Content-Type application/json"
    return None
