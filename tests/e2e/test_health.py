"""The plugin's own health verdict, ahead of kustomize-controller's 5 s poll
(ops.settle), on the real control plane with a real process behind the pod."""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from kubectl_gitops_run import ops
from kubectl_gitops_run.adapters.bucketserver import BucketServer
from kubectl_gitops_run.adapters.kube import connect
from kubectl_gitops_run.errors import Cancelled
from kubectl_gitops_run.ops.publish import Syncer
from kubectl_gitops_run.ops.report import Reporter
from tests.e2e.test_plugin import ok

WEB = Path(__file__).resolve().parents[2] / "examples" / "web"


class Verdicts(Reporter):
    """What the sync reported of its own verdict, and when."""

    def __init__(self, on_verdict=None):
        self.seen: list[tuple[float, bool, str]] = []
        self.on_verdict = on_verdict

    def judged(self, healthy: bool, message: str) -> None:
        self.seen.append((time.monotonic(), healthy, message))
        if self.on_verdict:
            self.on_verdict()


@pytest.fixture
def web(cluster, namespace, tmp_path):
    """examples/web as a session; yields (kube, its directory)."""
    app = tmp_path / "web"
    shutil.copytree(WEB, app)
    ok(cluster, "up", str(app), "-n", namespace, "--name", "web")
    yield connect(str(cluster.kubeconfig), None, namespace), app


def edit_env(app: Path, old: str, new: str) -> None:
    path = app / "deployment.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def sync(kube, namespace, app, report, cancel=None, timeout=120):
    with BucketServer(kube, namespace, "web") as server:
        syncer = Syncer(kube, namespace, "web", server, report=report, timeout=timeout,
                        cancel=cancel)
        return syncer, syncer.sync(ops.scanner(str(app), 10 << 20))


def test_a_rollout_is_reported_healthy_before_flux_says_so(namespace, web):
    kube, app = web
    edit_env(app, "Hello from kubectl gitops-run", "Hello again")
    report = Verdicts()
    syncer, result = sync(kube, namespace, app, report)
    done = time.monotonic()
    assert result.applied == 2
    [(at, healthy, message)] = report.seen
    assert healthy, message
    assert message.startswith("healthy: 2 objects Current"), message
    assert at <= done and syncer.judged is not None and syncer.judged.healthy


def test_a_crashing_pod_is_named_at_once_while_flux_still_waits(namespace, web):
    kube, app = web
    edit_env(app, "          env:\n", "          env:\n            - name: ECHO_EXIT\n"
                                      "              value: \"3\"\n")
    cancel = threading.Event()
    report = Verdicts(on_verdict=cancel.set)     # seen: stop waiting for Flux's 2 min timeout
    with pytest.raises(Cancelled):
        sync(kube, namespace, app, report, cancel=cancel)
    [(_, healthy, message)] = report.seen
    assert not healthy
    assert "Deployment.apps" in message and "web" in message, message
    assert "CrashLoopBackOff" in message or "exit" in message, message
