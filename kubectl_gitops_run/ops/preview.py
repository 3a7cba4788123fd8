"""`sync --dry-run` and `up --dry-run`: what a sync would upload, change and
remove, and nothing more. No Lease is taken and nothing is written: the
slot Flux reads is read through the bucket server's tunnel, and compared
with the scan (the same checked scan a sync makes, so bad input fails alike)."""
from __future__ import annotations

import os

from ..adapters.bucketserver import BucketServer
from ..adapters.kube import Kube
from ..core import manifests
from .options import Options
from .publish import Result, Syncer
from .snapshots import scanner


def preview(kube: Kube, name: str, source: str, opts: Options, *, path: str = "",
            decrypts: bool = True) -> Result:
    """The sync of `source` into session `name`, as it would go now. A session
    that does not exist yet (`up --dry-run`) would get every file."""
    snapshot = scanner(source, opts.max_file_size, path=path, include_keys=opts.include_secrets,
                       report=opts.report, decrypts=decrypts)()
    # what the session's objects would say; only the applied path matters here
    spec = manifests.Spec(name=name, namespace=kube.namespace, source=os.path.abspath(source),
                          host="", user="", path=path)
    with BucketServer(kube, kube.namespace, name, timeout=opts.timeout) as server:
        return Syncer(kube, kube.namespace, name, server, timeout=opts.timeout,
                      report=opts.report).preview(snapshot, spec)
