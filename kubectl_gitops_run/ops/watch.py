"""`--watch`: sync on every settled burst of changes.

A cycle runs in a worker thread so that the main thread keeps looking at the
tree: a change that arrives while the cycle waits for Flux cancels that wait
(the newer snapshot supersedes it), so a fix never waits behind a timeout.
Publishing itself is never cancelled; it is short and leaves a whole slot.
Ctrl-C stops watching and leaves the session in place. What people see of
it is the `Screen`'s business (the CLI's).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import threading

from ..adapters.bucketserver import BucketServer
from ..adapters.scanner import watch_filter
from ..adapters.treewatch import TreeWatcher
from ..errors import Cancelled, UserError
from .options import Options
from .publish import Result
from .report import SILENT
from .sync import sync

LOOK = 0.05      # how often the main thread looks for changes during a cycle


class Screen:
    """What a watch loop tells: its start, each cycle's outcome, its end."""

    def started(self, source: str, session: str, namespace: str) -> None:
        """Watching has begun."""

    def cycle(self, result: Result | None, error: str | None) -> None:
        """A sync finished: its result, or the error that ended it."""

    def stopped(self, session: str) -> None:
        """Ctrl-C: watching ended, the session stays."""


def watch(kube, name: str, source: str, opts: Options, screen: Screen, path: str = "") -> None:
    cache: dict = {}
    cancel = threading.Event()
    opts = dataclasses.replace(opts, report=SILENT)     # one line per cycle, no bars
    with BucketServer(kube, kube.namespace, name, timeout=opts.timeout) as server, \
            TreeWatcher(source, ignored=watch_filter(os.path.abspath(source))) as watcher:
        screen.started(source, name, kube.namespace)
        try:
            while True:
                cancel.clear()
                outcome: dict = {}
                one = functools.partial(sync, kube, name, source, opts, path=path,
                                        server=server, cancel=cancel, cache=cache)
                worker = threading.Thread(target=_cycle, args=(one, outcome), daemon=True,
                                          name="gitops-run-sync")
                worker.start()
                while worker.is_alive():
                    if watcher.changed_since():
                        cancel.set()            # a newer snapshot supersedes this one
                    worker.join(LOOK)
                if "cancelled" not in outcome:
                    screen.cycle(outcome.get("result"), outcome.get("error"))
                watcher.wait(0 if watcher.changed_since() else None)
        except KeyboardInterrupt:
            cancel.set()
            screen.stopped(name)


def _cycle(one_sync, outcome: dict) -> None:
    try:
        outcome["result"] = one_sync()
    except Cancelled:
        outcome["cancelled"] = True
    except UserError as e:
        outcome["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - keep watching; say what broke
        outcome["error"] = f"{type(e).__name__}: {e}"
