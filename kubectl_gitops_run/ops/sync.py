"""`sync`: one sync of a session, holding its Lease (one sync at a time)."""
from __future__ import annotations

import contextlib
import threading
import time

from ..adapters.bucketserver import BucketServer
from ..adapters.kube import Kube
from ..adapters.lease import SyncLease
from ..core import helm
from ..errors import UserError
from .history import record_sync
from .options import Options
from .publish import Result, Syncer
from .snapshots import scanner


@contextlib.contextmanager
def holding_lease(kube: Kube, namespace: str, session: str, wait: bool, timeout: float):
    """Hold the session's sync Lease: one sync at a time across shells."""
    lease = SyncLease(kube, namespace, session)
    lease.acquire(wait=wait, timeout=timeout)
    try:
        yield lease
    finally:
        lease.release()


def sync(kube: Kube, name: str, source: str, opts: Options, *, path: str = "",
         decrypts: bool = True,
         server: BucketServer | None = None, cancel: threading.Event | None = None,
         cache: dict | None = None) -> Result:
    """One sync of session `name`, whose Kustomization applies `path`;
    `server` and `cache` are kept by watch mode between syncs. Each one is
    recorded as an Event on the Bucket (ops.history)."""
    try:
        result = _sync(kube, name, source, opts, path=path, decrypts=decrypts, server=server,
                       cancel=cancel, cache=cache)
    except UserError as e:       # a Cancelled sync was superseded: not a failure
        record_sync(kube, name, error=str(e))
        raise
    record_sync(kube, name, result)
    return result


def _sync(kube: Kube, name: str, source: str, opts: Options, *, path: str, decrypts: bool,
          server: BucketServer | None, cancel: threading.Event | None,
          cache: dict | None) -> Result:
    start, ns = time.monotonic(), kube.namespace
    scan_source = scanner(source, opts.max_file_size, cache, path=path,
                          include_keys=opts.include_secrets, report=opts.report,
                          decrypts=decrypts)
    first = scan_source()   # fail on bad input before touching the bucket
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(BucketServer(kube, ns, name, timeout=opts.timeout))
        syncer = Syncer(kube, ns, name, server, timeout=opts.timeout, cancel=cancel,
                        report=opts.report)
        with holding_lease(kube, ns, name, wait=opts.wait, timeout=opts.timeout):
            result = syncer.sync(scan_source, wait=False, first=first)
        if opts.wait:     # the tree says which: a chart is the HelmRelease's
            result.applied = syncer.wait_applied(result.revision,
                                                 helm.deployer(first.entries, path))
    result.elapsed = time.monotonic() - start
    return result
