"""Recording each sync as an Event on the session's Bucket (core.history), so
that `kubectl events` and every `ui` page show the history."""
from __future__ import annotations

import logging

from ..adapters import localhost
from ..adapters.kube import Kube
from ..core import history, naming
from ..errors import ApiError
from .publish import Result, now_rfc3339

log = logging.getLogger(__name__)


def record_sync(kube: Kube, session: str, result: Result | None = None,
                error: str | None = None) -> None:
    """Record one sync (a Result, or the error that ended it). Best effort: a
    user who may not create Events still syncs; the history just misses it."""
    if result is not None and result.up_to_date:
        return          # nothing happened: no history to keep
    ns = kube.namespace
    try:
        bucket = kube.get("Bucket", naming.object_name(session), ns)
        uid = (bucket or {}).get("metadata", {}).get("uid")
        counts = revision = None
        if result is not None:
            counts = (len(result.plan.added), len(result.plan.changed), len(result.plan.removed))
            revision = result.revision
        kube.create(history.sync_event(ns, session, now=now_rfc3339(),
                                       who=localhost.identity(), bucket_uid=uid,
                                       counts=counts, revision=revision, error=error))
    except ApiError as e:
        log.debug("could not record the sync of %s/%s as an Event: %s", ns, session, e)
