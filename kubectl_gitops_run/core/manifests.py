"""The manifests of a session's objects, and its credentials (pure).

A session owns these objects (names and labels: core.naming): two Secrets
(the root S3 credentials, and Flux's read-only ones: core.bucketreader), a
Deployment and a ClusterIP Service (the bucket server), a Flux Bucket and a
Flux Kustomization. Facts that never change
(source dir, host, user, path, target namespace) are annotations on every one
of them, so any surviving object of a half-created session still says what it
was; facts that change with every sync (revision, files, bytes, last sync) are
annotations on the Bucket, written in the same patch that points it at a new
snapshot.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass

from . import fetchscope, namespaces
from .naming import (ANNOTATION, BUCKET_SERVER, POD_KEY_LABEL, annotations, labels, object_name,
                     reader_secret_name, sops_secret_name)

# By tag and digest: a tag can be moved, the digest (the image index) cannot.
DEFAULT_IMAGE = ("quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
                 "@sha256:14cea493d9a34af32f524e538b8346cf79f3321eff8e708c1e2960462bd8936e")
# The bucket holds two snapshots of the tree: cap its disk, as its memory.
BUCKET_SIZE = "2Gi"
TMP_SIZE = "64Mi"
S3_PORT = 9000
# The bucket server keeps two snapshots: Flux reads one while a sync fills the
# other, so Flux never indexes a bucket that is being written (no torn syncs).
SLOTS = ("snapshot-a", "snapshot-b")
# Flux reconciles on request (sync), so these only bound the drift repair.
FLUX_INTERVAL = "60m"


@dataclass(frozen=True)
class Spec:
    """What `up` asks for: everything the manifests depend on."""
    name: str
    namespace: str
    source: str
    host: str
    user: str
    path: str = ""                  # sub-directory the Kustomization applies
    target_namespace: str = ""      # default: the session namespace
    image: str = DEFAULT_IMAGE
    service_account: str = ""       # default: the session's own (core.rbac)
    pod_key: str = ""               # random, on the bucket pods and in the Service selector
    flux_namespace: str = "flux-system"     # where source-controller runs
    decrypt: bool = False           # SOPS: the Kustomization decrypts with the session's key

    def static_facts(self) -> dict:
        return annotations(source=self.source, host=self.host, user=self.user,
                           path=self.path or ".", target_namespace=self.target)

    @property
    def target(self) -> str:
        return self.target_namespace or self.namespace

    @property
    def source_path(self) -> str:
        """The applied path as Flux names it inside the Bucket's artifact."""
        return "./" + self.path.strip("/")

    def meta(self, component: str | None = None, extra: dict | None = None) -> dict:
        return {"name": object_name(self.name), "namespace": self.namespace,
                "labels": labels(self.name, component),
                "annotations": {**self.static_facts(), **(extra or {})}}


def new_credentials() -> dict:
    """Random S3 credentials (access key 80 bits, secret key 240 bits), in the
    keys Flux's generic Bucket provider reads."""
    return {"accesskey": "gr" + secrets.token_hex(10), "secretkey": secrets.token_urlsafe(30)}


def credentials_ok(data: dict | None) -> bool:
    data = data or {}
    return bool(data.get("accesskey")) and bool(data.get("secretkey"))


def decode_secret(secret: dict | None) -> dict:
    """The credentials a Secret holds; {} for a missing or garbled one."""
    try:
        return {k: base64.b64decode(v).decode()
                for k, v in ((secret or {}).get("data") or {}).items()}
    except (binascii.Error, UnicodeDecodeError, TypeError):
        return {}


def secret(spec: Spec, creds: dict) -> dict:
    """The credentials, and (as an annotation) the pod key: the plugin looks
    for bucket pods with it before it sends them anything."""
    meta = spec.meta("credentials", annotations(pod_key=spec.pod_key or None))
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": creds}


def reader_secret(spec: Spec, creds: dict) -> dict:
    """The read-only credentials Flux's Bucket reads with (core.bucketreader)."""
    meta = spec.meta("credentials")
    meta["name"] = reader_secret_name(spec.name)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": creds}


def new_pod_key() -> str:
    """Only pods from our Deployment's template carry it: a look-alike pod that
    someone plants with the session's labels gets no traffic from the Service."""
    return secrets.token_hex(8)


def pod_key(deployment: dict | None) -> str:
    """The key an existing bucket-server Deployment puts on its pods ('' if none)."""
    template = (((deployment or {}).get("spec") or {}).get("template") or {})
    return ((template.get("metadata") or {}).get("labels") or {}).get(POD_KEY_LABEL, "")


def credentials_digest(creds: dict) -> str:
    """Put on the pod template so that new credentials roll the bucket pod; a
    hash of 240 random bits reveals nothing of them."""
    return hashlib.sha256(f"{creds['accesskey']}\0{creds['secretkey']}".encode()).hexdigest()[:16]


def deployment(spec: Spec, creds_digest: str) -> dict:
    name = object_name(spec.name)
    secret_env = [
        {"name": env, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
        for env, key in (("MINIO_ROOT_USER", "accesskey"), ("MINIO_ROOT_PASSWORD", "secretkey"))]
    container = {
        "name": "bucket-server", "image": spec.image,
        # the root file system is read-only: MinIO keeps its certs dir in /tmp
        "args": ["server", "/data", "--address", f":{S3_PORT}", "--certs-dir", "/tmp/certs"],
        "env": secret_env + [{"name": "MINIO_BROWSER", "value": "off"},
                             {"name": "MINIO_UPDATE", "value": "off"}],
        "ports": [{"name": "s3", "containerPort": S3_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": S3_PORT},
                           "periodSeconds": 2, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi",
                                 "ephemeral-storage": BUCKET_SIZE}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_labels = labels(spec.name, BUCKET_SERVER)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": spec.meta(BUCKET_SERVER),
        "spec": {
            "replicas": 1,
            # storage is an emptyDir: never run two servers with diverging contents
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": {**pod_labels, **_key_label(spec)},
                             "annotations": {ANNOTATION + "credentials": creds_digest}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                        "runAsGroup": 65532, "fsGroup": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": BUCKET_SIZE}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}],
                }}}}


def _key_label(spec: Spec) -> dict:
    return {POD_KEY_LABEL: spec.pod_key} if spec.pod_key else {}


def network_policy(spec: Spec) -> dict:
    """Only source-controller may reach the bucket server inside the cluster.
    (The plugin's own port-forward goes through the API server and the kubelet,
    which a NetworkPolicy does not govern: RBAC on pods/portforward guards it.)"""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": spec.meta(BUCKET_SERVER),
            "spec": {"podSelector": {"matchLabels": labels(spec.name, BUCKET_SERVER)},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{
                         "namespaceSelector": {"matchLabels": {
                             "kubernetes.io/metadata.name": spec.flux_namespace}},
                         "podSelector": {"matchLabels": {"app": "source-controller"}}}],
                         "ports": [{"protocol": "TCP", "port": S3_PORT}]}]}}


def service(spec: Spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": spec.meta(BUCKET_SERVER),
            "spec": {"type": "ClusterIP",
                     "selector": {**labels(spec.name, BUCKET_SERVER), **_key_label(spec)},
                     "ports": [{"name": "s3", "port": S3_PORT, "targetPort": "s3",
                                "protocol": "TCP"}]}}


def endpoint(spec: Spec) -> str:
    return f"{object_name(spec.name)}.{spec.namespace}.svc.cluster.local:{S3_PORT}"


def bucket(spec: Spec, slot: str, facts: dict, fetch: dict | None = None) -> dict:
    """The Flux Bucket, pointed at one snapshot slot; `facts` are the sync's
    annotations (revision, files, bytes, last sync), `fetch` what Flux
    fetches of the slot (fetch_spec)."""
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
            "metadata": spec.meta(None, facts),
            "spec": {"provider": "generic", "bucketName": slot, "endpoint": endpoint(spec),
                     "insecure": True, "secretRef": {"name": reader_secret_name(spec.name)},
                     "interval": FLUX_INTERVAL,
                     **{k: v for k, v in (fetch or fetch_spec((), 0)).items() if v}}}


def fetch_spec(dirs: tuple[str, ...], objects: int) -> dict:
    """The Bucket fields that bound Flux's fetch of a slot: `ignore` keeps only
    `dirs` (None: all), and `timeout` grows with the objects fetched."""
    return {"ignore": fetchscope.ignore_rules(dirs), "timeout": fetchscope.fetch_timeout(objects)}


def kustomization(spec: Spec) -> dict:
    """Objects that name no namespace land in the session's through the
    component the upload carries (core.namespaces); --target-namespace forces
    one on all, as Flux's targetNamespace does."""
    out = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
           "metadata": spec.meta(None),
           "spec": {"sourceRef": {"kind": "Bucket", "name": object_name(spec.name)},
                    "path": spec.source_path, "prune": True, "wait": True,
                    "components": [namespaces.component_ref(spec.path)],
                    "serviceAccountName": spec.service_account or object_name(spec.name),
                    "interval": FLUX_INTERVAL, "retryInterval": "30s", "timeout": "2m"}}
    if spec.target_namespace:
        out["spec"]["targetNamespace"] = spec.target_namespace
    if spec.decrypt:
        out["spec"]["decryption"] = {"provider": "sops",
                                     "secretRef": {"name": sops_secret_name(spec.name)}}
    return out


AGE_KEY = re.compile(r"^AGE-SECRET-KEY-1[0-9A-Z]+$", re.M)


def sops_secret(spec: Spec, key_file_text: str) -> dict:
    """The age key Flux decrypts the session's SOPS files with: only the
    secret key lines of the file (comments hold the public key and a date)."""
    keys = "\n".join(AGE_KEY.findall(key_file_text)) + "\n"
    meta = spec.meta("decryption")
    meta["name"] = sops_secret_name(spec.name)
    # Flux reads every data key that ends in .agekey
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": {"identity.agekey": keys}}


def is_age_key(text: str) -> bool:
    return bool(AGE_KEY.search(text))


def other_slot(slot: str | None) -> str:
    """The slot a sync fills: the one Flux is not reading."""
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]
