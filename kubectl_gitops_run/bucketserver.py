"""The session's bucket server, reached from here: its Ready pod, its
credentials, a port-forward to it and an S3 client over that.

A dead tunnel or a replaced pod shows up as an S3Error without an HTTP status;
`reconnect()` then finds the current Ready pod and forwards to it afresh.
"""
from __future__ import annotations

import base64
import logging
import time

from . import session as sess
from .errors import UserError
from .kube import Kube

log = logging.getLogger(__name__)

# Waiting reasons no amount of waiting fixes.
FATAL_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff",
                 "RunContainerError"}


def pod_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_problem(pod: dict) -> tuple[str, bool] | None:
    """(what keeps the pod from being Ready, whether it is hopeless), or None."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            text = waiting["reason"] + (f": {waiting['message']}" if waiting.get("message") else "")
            return text, waiting["reason"] in FATAL_WAITING
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return f"not scheduled: {c.get('message') or c.get('reason')}", False
    return (f"pod phase {status['phase']}", False) if status.get("phase") else None


def current_pod(pods: list[dict]) -> dict | None:
    """The pod to talk to: a Ready one not being deleted, the newest first; else
    the newest live one (to say why it is not Ready)."""
    live = sorted((p for p in pods if not p["metadata"].get("deletionTimestamp")),
                  key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return next((p for p in live if pod_ready(p)), live[0] if live else None)


class BucketServer:
    def __init__(self, kube: Kube, namespace: str, session: str, timeout: float = 120):
        self.kube, self.namespace, self.session = kube, namespace, session
        self.timeout = timeout
        self.pod: str | None = None
        self._forward = None
        self._s3 = None

    def __enter__(self) -> "BucketServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._s3 is not None:
            self._s3.close()
        if self._forward is not None:
            self._forward.close()
        self._s3 = self._forward = None

    def s3(self):
        if self._s3 is None:
            self._connect()
        return self._s3

    def reconnect(self) -> None:
        log.debug("reconnecting to the bucket server of %s/%s", self.namespace, self.session)
        self.close()
        self._connect()

    def wait_ready(self) -> dict:
        """The Ready bucket pod; a UserError saying why if it does not get there."""
        selector = sess.selector(self.session) + f",{sess.COMPONENT_LABEL}=bucket-server"
        deadline = time.monotonic() + self.timeout
        while True:
            pod = current_pod(self.kube.list("Pod", self.namespace, selector))
            if pod is not None and pod_ready(pod):
                return pod
            problem = pod_problem(pod) if pod else None
            if (problem and problem[1]) or time.monotonic() >= deadline:
                raise UserError(self._not_ready(pod, problem))
            time.sleep(0.2)

    def _not_ready(self, pod: dict | None, problem) -> str:
        if pod is None:
            return (f"no bucket-server pod for session {self.session!r} in namespace "
                    f"{self.namespace!r} after {self.timeout:g}s; check "
                    f"`kubectl get deployment {sess.object_name(self.session)} -n {self.namespace}`")
        name = pod["metadata"]["name"]
        text = f"bucket-server pod {self.namespace}/{name} is not Ready"
        if problem:
            text += f": {problem[0]}"
        events = self._events(name)
        if events:
            text += f"; last events: {events}"
        if problem and "Image" in problem[0]:
            text += "; check --bucket-image"
        return text

    def _events(self, pod: str) -> str:
        try:
            items = self.kube.list("Event", self.namespace)
        except UserError:
            return ""
        mine = [e for e in items if (e.get("involvedObject") or {}).get("name") == pod]
        mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return "; ".join(f"{e.get('reason')}: {e.get('message')}" for e in mine[-3:])

    def credentials(self) -> dict:
        obj = self.kube.get("Secret", sess.object_name(self.session), self.namespace)
        data = {k: base64.b64decode(v).decode() for k, v in ((obj or {}).get("data") or {}).items()}
        if not sess.owns(obj, self.session) or not sess.credentials_ok(data):
            raise UserError(f"the credentials Secret of session {self.session!r} is missing or "
                            f"broken; run `kubectl gitops-run up` to repair the session")
        return data

    def _connect(self) -> None:
        from .portforward import PortForward
        from .s3 import S3
        pod = self.wait_ready()
        creds = self.credentials()
        self.pod = pod["metadata"]["name"]
        self._forward = PortForward(self.kube.api_client, self.namespace, self.pod, sess.S3_PORT)
        self._forward.start()
        self._s3 = S3(self._forward.url, creds["accesskey"], creds["secretkey"])
        deadline = time.monotonic() + min(self.timeout, 30)
        while not self._s3.ready():
            if time.monotonic() >= deadline:
                why = self._forward.last_error or "it does not answer"
                self.close()
                raise UserError(f"cannot reach the bucket server in pod {self.namespace}/"
                                f"{pod['metadata']['name']}: {why}")
            time.sleep(0.2)
