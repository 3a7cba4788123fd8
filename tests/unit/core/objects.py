"""Objects shaped like what the API server returns, for the core's tests."""
from __future__ import annotations

MANAGED = {"app.kubernetes.io/managed-by": "kubectl-gitops-run"}
A = "kubectl-gitops-run.io/"


def meta(session, namespace, created, name=None, annotations=None, **extra):
    return {"name": name or f"gitops-run-{session}", "namespace": namespace,
            "creationTimestamp": created,
            "labels": {**MANAGED, "kubectl-gitops-run.io/session": session},
            "annotations": annotations or {}, **extra}


def static(source, host="laptop", user="ana", path=".", target=None):
    out = {A + "source": source, A + "host": host, A + "user": user, A + "path": path}
    if target:
        out[A + "target-namespace"] = target
    return out


def pod(session, namespace, name, created, ready, deleting=False):
    m = meta(session, namespace, created, name=name)
    if deleting:
        m["deletionTimestamp"] = "2026-11-24T19:59:00Z"
    return {"metadata": m, "status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True" if ready else "False"}]}}
