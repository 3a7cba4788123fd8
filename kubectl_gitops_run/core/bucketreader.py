"""Flux's own, read-only user of the bucket server (pure).

source-controller only ever lists and reads the snapshot slots, so it gets a
MinIO user that can do nothing else: the root credentials stay with the
plugin and the pod (docs/architecture.md, invariant 5). The user is made
through MinIO's admin API `import-iam-v2`, which takes a plain zip of IAM
files (its single-user calls want a body encrypted with the root key, a
cipher the standard library lacks). The import is idempotent: it sets the
policy, the user and its mapping to exactly what is given.
"""
from __future__ import annotations

import io
import json
import zipfile

from .manifests import SLOTS

POLICY = "gitops-run-reader"
IMPORT_PATH = "/minio/admin/v3/import-iam-v2"
# What the Bucket's generic provider calls: the region lookup, the bucket's
# existence (a HEAD, checked as ListBucket), the listing and the objects.
ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject")
_DIR = "iam-assets"
_MAPPED_AT = "2000-01-01T00:00:00Z"   # MinIO wants a time; nothing reads it


def policy(slots: tuple[str, ...] = SLOTS) -> dict:
    arns = [arn for slot in slots for arn in (f"arn:aws:s3:::{slot}", f"arn:aws:s3:::{slot}/*")]
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(ACTIONS), "Resource": arns}]}


def iam_import(creds: dict) -> bytes:
    """The zip `import-iam-v2` takes: our policy, the reader and its mapping."""
    files = {
        "policies.json": {POLICY: policy()},
        "users.json": {creds["accesskey"]: {"secretKey": creds["secretkey"],
                                            "status": "enabled"}},
        "user_mappings.json": {creds["accesskey"]: {"version": 1, "policy": POLICY,
                                                    "updatedAt": _MAPPED_AT}},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(f"{_DIR}/{name}", json.dumps(content))
    return out.getvalue()


def import_failures(body: bytes) -> list[str]:
    """What the import reports as failed ("users: gr..."), from its JSON answer."""
    try:
        failed = (json.loads(body or b"{}") or {}).get("failed") or {}
    except (ValueError, AttributeError):
        return [f"an answer that is not JSON: {body[:80]!r}"]
    return [f"{kind}: {entry.get('name', '?')}"
            for kind, entries in sorted(failed.items()) for entry in entries or ()
            if isinstance(entry, dict)]
