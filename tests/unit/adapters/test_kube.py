"""The Kubernetes access module's pure helpers (no API server)."""
from __future__ import annotations

from kubectl_gitops_run.adapters import kube


def test_root_cause_unwraps_reasons_and_causes():
    class Wrapper(Exception):
        def __init__(self, text, reason):
            super().__init__(text)
            self.reason = reason
    inner = ConnectionRefusedError("[Errno 111] Connection refused")
    assert kube._root_cause(Wrapper("Max retries exceeded", inner)) == str(inner)
    try:
        try:
            raise inner
        except OSError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as outer:
        assert kube._root_cause(Wrapper("retries", outer)) == str(inner)
    pooled = OSError("<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish "
                     "a new connection: [Errno 111] Connection refused")
    assert kube._root_cause(pooled) == \
        "Failed to establish a new connection: [Errno 111] Connection refused"
    assert kube._root_cause(ValueError("plain")) == "plain"


def test_root_cause_of_urllib3_errors():
    from urllib3.connection import HTTPSConnection
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    conn = HTTPSConnection("127.0.0.1", 1)
    err = MaxRetryError(None, "/api", NewConnectionError(
        conn, "Failed to establish a new connection: [Errno 111] Connection refused"))
    text = kube._root_cause(err)
    assert text.endswith("Failed to establish a new connection: [Errno 111] Connection refused")
    assert "Max retries" not in text
