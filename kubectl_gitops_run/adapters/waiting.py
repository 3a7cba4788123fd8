"""One way to wait for the API server: list, then watch (docs/architecture.md,
"Waiting").

A wait lists what it looks at (or starts from the object its caller just
read or wrote), then follows one watch from that resourceVersion, with a
server-side timeout at its own deadline: a quiet wait costs one or two
requests however long it lasts, and sees a change as soon as the API server
does. An expired resourceVersion (410 Gone) makes it list again. Only where
the API server refuses to watch (405, or 403 while a plain read is allowed)
does it poll, every POLL s.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..errors import ApiError, Cancelled, WaitTimeout

POLL = 0.5              # seconds between reads where watching is refused
REFUSED = (403, 405)    # a LIST or WATCH answered so: poll instead


def until(kube, kind: str, namespace: str, check, *, name: str, timeout: float,
          cancel: threading.Event | None = None, start: dict | None = None):
    """Wait until check(obj) returns something truthy and return it. obj is the named
    object, or None while it does not exist / after it was deleted. check may raise to
    abort. `start`: the object as the caller just read or wrote it; its
    metadata.resourceVersion starts the watch, saving the initial LIST (check(start) is
    called first). Raises errors.WaitTimeout on timeout and errors.Cancelled as soon as
    `cancel` is set (within ~0.1 s even while a watch is blocked reading)."""
    view = _View(kube, kind, namespace, name=name)
    return _wait(view, check, timeout, cancel, start)


def until_list(kube, kind: str, namespace: str, selector: str, check, *, timeout: float,
               cancel: threading.Event | None = None):
    """The same for every object matching a label selector: check(objects: list[dict])."""
    view = _View(kube, kind, namespace, selector=selector)
    return _wait(view, check, timeout, cancel, None)


@dataclass
class _View:
    """What a wait looks at, kept current: one named object, or every object
    that matches a selector (by name)."""
    kube: object
    kind: str
    namespace: str
    name: str | None = None
    selector: str | None = None
    objects: dict = field(default_factory=dict)

    def describe(self) -> str:
        if self.name:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} objects matching {self.selector} in namespace {self.namespace}"

    def value(self):
        return self.objects.get(self.name) if self.name else list(self.objects.values())

    def seed(self, obj: dict) -> str:
        self.objects = {obj["metadata"]["name"]: obj}
        return obj["metadata"]["resourceVersion"]

    def relist(self) -> str:
        """List afresh; the List's resourceVersion."""
        fields = f"metadata.name={self.name}" if self.name else None
        doc = self.kube.collection(self.kind, self.namespace, self.selector, fields=fields)
        self.objects = {o["metadata"]["name"]: o for o in doc.get("items") or []}
        return doc["metadata"]["resourceVersion"]

    def read(self) -> None:
        """One plain read, for polling: a GET of the named object, or a LIST."""
        if self.name:
            obj = self.kube.get(self.kind, self.name, self.namespace)
            self.objects = {self.name: obj} if obj is not None else {}
        else:
            self.relist()

    def apply(self, event: str, obj: dict) -> None:
        name = obj["metadata"]["name"]
        if event == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj


def _wait(view: _View, check, timeout: float, cancel, start):
    deadline = time.monotonic() + timeout
    rv = None
    if start is not None:
        rv = view.seed(start)
        result = check(view.value())
        if result:
            return result
    while True:
        _over(view, timeout, deadline, cancel)
        try:
            if rv is None:
                rv = view.relist()
                result = check(view.value())
                if result:
                    return result
            rv, result = _follow(view, check, rv, deadline, cancel)
        except ApiError as e:
            if e.status == 410:
                rv = None           # too old to watch from: list afresh
                continue
            if e.status in REFUSED:
                return _poll(view, check, timeout, deadline, cancel)
            raise
        if result:
            return result


def _follow(view: _View, check, rv: str, deadline: float, cancel):
    """Follow one watch from rv until check passes or the API server ends it
    (at the deadline); (the last resourceVersion seen, check's result)."""
    events = view.kube.watch(view.kind, view.namespace, resource_version=rv,
                             timeout=deadline - time.monotonic(), name=view.name,
                             selector=view.selector, cancel=cancel)
    try:
        for event, obj in events:
            rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
            if event == "BOOKMARK":
                continue
            view.apply(event, obj)
            result = check(view.value())
            if result:
                return rv, result
    finally:
        events.close()              # done early: end the request now
    return rv, None


def _poll(view: _View, check, timeout: float, deadline: float, cancel):
    while True:
        view.read()
        result = check(view.value())
        if result:
            return result
        pause = max(0.0, min(POLL, deadline - time.monotonic()))
        if cancel is not None:
            cancel.wait(pause)
        else:
            time.sleep(pause)
        _over(view, timeout, deadline, cancel)


def _over(view: _View, timeout: float, deadline: float, cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"stopped waiting for {view.describe()}")
    if time.monotonic() >= deadline:
        raise WaitTimeout(f"timed out after {timeout:g}s waiting for {view.describe()}")
