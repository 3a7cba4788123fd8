"""A kind's objects kept current: list, then watch for as long as asked
(docs/architecture.md, "Waiting": the same list-then-watch, re-listing on 410
Gone, but with no end). The `ui` server runs one per kind and scope, shared
by every open page."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from ..errors import ApiError, Cancelled
from .kube import Kube

log = logging.getLogger(__name__)

WATCH_SECONDS = 300     # each watch request; the next one resumes where it ended
RETRY = 5.0             # seconds before trying again after a refusal or an outage


class Informer:
    """Calls `reset(items)` with each full list and `event(type, obj)` with
    each change; `failed(message)` while the API server refuses (then retries
    every RETRY s). `url`: the kind's collection (adapters.discovery), in one
    namespace or in all."""

    def __init__(self, kube: Kube, kind: str, api_version: str, url: str, *,
                 reset: Callable[[list[dict]], None], event: Callable[[str, dict], None],
                 failed: Callable[[str | None], None], selector: str | None = None):
        self.kube, self.kind, self.api_version, self.url = kube, kind, api_version, url
        self.reset, self.event, self.failed, self.selector = reset, event, failed, selector
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"gitops-run ui watch {kind}")

    def start(self) -> "Informer":
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()

    def _list(self) -> str:
        query = {"labelSelector": self.selector} if self.selector else None
        doc = self.kube.request("GET", self.url, query=query)
        items = doc.get("items") or []
        for item in items:      # a List drops them from its items
            item.setdefault("kind", self.kind)
            item.setdefault("apiVersion", self.api_version)
        self.reset(items)
        return doc["metadata"]["resourceVersion"]

    def _run(self) -> None:
        rv = None
        while not self.stop.is_set():
            try:
                rv = rv or self._list()
                self.failed(None)
                rv = self._follow(rv)
            except Cancelled:
                return
            except ApiError as e:
                if e.status == 410:
                    rv = None       # too old to watch from: list afresh
                    continue
                log.debug("watch of %s failed: %s", self.url, e)
                self.failed(str(e))
                rv = None
                self.stop.wait(RETRY)

    def _follow(self, rv: str) -> str:
        events = self.kube.watch(self.kind, "", resource_version=rv, timeout=WATCH_SECONDS,
                                 selector=self.selector, cancel=self.stop, url=self.url)
        for kind, obj in events:
            rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
            if kind != "BOOKMARK":
                obj.setdefault("kind", self.kind)
                obj.setdefault("apiVersion", self.api_version)
                self.event(kind, obj)
        return rv
