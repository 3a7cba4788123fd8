"""The session's bucket server, reached from here: its Ready pod, its
credentials, a port-forward to it and an S3 client over that.

A dead tunnel or a replaced pod shows up as an S3Error without an HTTP status;
`reconnect()` then finds the current Ready pod and forwards to it afresh.
"""
from __future__ import annotations

import logging
import time

from ..core import bucketreader, naming
from ..core.manifests import S3_PORT, credentials_ok, decode_secret
from ..core.pods import current_pod, from_deployment, pod_problem, pod_ready
from ..errors import UserError, WaitTimeout
from .kube import Kube, quota_way_out
from .waiting import until_list

log = logging.getLogger(__name__)

# pauses between looks at the bucket server through a new tunnel: 6 looks, 6.2 s
# about 20 s in all: a loaded machine or a flaky tunnel needs that long, as
# the old 30 s poll allowed; a pod that answers costs one try
CONNECT_BACKOFF = (0.2, 0.4, 0.8, 1.6, 3.2, 3.2, 3.2, 3.2, 3.2)
# seconds with no bucket pod at all before the Deployment is asked why (a
# quota, say, refuses its ReplicaSet the pod: no use waiting out the timeout)
NO_POD_SPELL = 5


def replica_failure(deployment: dict | None) -> str | None:
    """The ReplicaFailure a Deployment reports (copied from its ReplicaSet):
    why it has no pod, e.g. a quota exceeded."""
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return " ".join(str(cond.get("message") or cond.get("reason") or "").split()) or None
    return None


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

    def wait_ready(self, pod_key: str | None = None) -> dict:
        """The Ready bucket pod of our Deployment (with our pod key, when the
        session has one); a UserError saying why if it does not get there."""
        seen: list[dict | None] = [None]
        deployment = naming.object_name(self.session)
        selector = naming.bucket_pods_selector(self.session)
        if pod_key:
            selector += f",{naming.POD_KEY_LABEL}={pod_key}"

        def ready(pods: list[dict]) -> dict | None:
            pod = seen[0] = current_pod([p for p in pods if from_deployment(p, deployment)])
            if pod is not None and pod_ready(pod):
                return pod
            problem = pod_problem(pod) if pod else None
            if problem and problem[1]:          # hopeless: no use waiting
                raise UserError(self._not_ready(pod, problem))
            return None

        deadline = time.monotonic() + self.timeout
        while True:     # in spells: with no pod at all, ask the Deployment why
            left = deadline - time.monotonic()
            try:
                return until_list(self.kube, "Pod", self.namespace, selector, ready,
                                  timeout=max(0.1, min(left, NO_POD_SPELL)))
            except WaitTimeout:
                pod = seen[0]
                refused = None if pod else self._refused()
                if refused or left <= NO_POD_SPELL:
                    raise UserError(self._not_ready(pod, pod_problem(pod) if pod else None,
                                                    refused)) from None

    def _refused(self) -> str | None:
        """Why our Deployment gets no pod, when its ReplicaSet was refused one."""
        try:
            obj = self.kube.get("Deployment", naming.object_name(self.session), self.namespace)
        except UserError:
            return None
        return replica_failure(obj)

    def _not_ready(self, pod: dict | None, problem, refused: str | None = None) -> str:
        if pod is None:
            text = f"no bucket-server pod for session {self.session!r} in namespace " \
                   f"{self.namespace!r}"
            if refused:
                return (f"{text}: its ReplicaSet may not create one: {refused}; "
                        + (quota_way_out(refused, self.namespace) or "fix that and retry"))
            return (f"{text} after {self.timeout:g}s; check `kubectl get deployment "
                    f"{naming.object_name(self.session)} -n {self.namespace}`")
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

    def credentials(self) -> tuple[dict, str | None]:
        """The S3 credentials, and the pod key the bucket pods must carry."""
        obj = self.kube.get("Secret", naming.object_name(self.session), self.namespace)
        data = decode_secret(obj)
        if not naming.owns(obj, self.session) or not credentials_ok(data):
            raise UserError(f"the credentials Secret of session {self.session!r} is missing or "
                            f"broken; run `kubectl gitops-run up` to repair the session")
        return data, naming.fact(obj, "pod-key")

    def admit_reader(self) -> bool:
        """Give the bucket server Flux's read-only user (a new pod has none);
        False for a session made before it had one (its Bucket reads as root)."""
        obj = self.kube.get("Secret", naming.reader_secret_name(self.session), self.namespace)
        creds = decode_secret(obj)
        if not naming.owns(obj, self.session) or not credentials_ok(creds):
            return False
        answer = self.s3().admin_put(bucketreader.IMPORT_PATH, bucketreader.iam_import(creds),
                                     "create Flux's read-only bucket user")
        failed = bucketreader.import_failures(answer)
        if failed:
            raise UserError(f"the bucket server of session {self.session!r} refused Flux's "
                            f"read-only user ({', '.join(failed)}); run `kubectl gitops-run up` "
                            f"to repair the session")
        return True

    def _connect(self) -> None:
        from .portforward import PortForward
        from .s3 import S3
        creds, pod_key = self.credentials()
        pod = self.wait_ready(pod_key)
        self.pod = pod["metadata"]["name"]
        self._forward = PortForward(self.kube, self.namespace, self.pod, S3_PORT)
        self._forward.start()
        self._s3 = S3(self._forward.url, creds["accesskey"], creds["secretkey"])
        # The pod is Ready, so its probe saw MinIO answer: the tries cover a
        # tunnel that is slow to open or dropped.
        for pause in (*CONNECT_BACKOFF, None):
            if self._s3.ready():
                return
            if pause is not None:
                time.sleep(pause)
        why = self._forward.last_error or "it does not answer"
        self.close()
        raise UserError(f"cannot reach the bucket server in pod {self.namespace}/{self.pod}: "
                        f"{why}")
