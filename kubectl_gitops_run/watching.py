"""`--watch`: sync on every settled burst of changes, one line per cycle.

A cycle runs in a worker thread so that the main thread keeps looking at the
tree: a change that arrives while the cycle waits for Flux cancels that wait
(the newer snapshot supersedes it), so a fix never waits behind a timeout.
Publishing itself is never cancelled; it is short and leaves a whole slot.
Ctrl-C stops watching and leaves the session in place.
"""
from __future__ import annotations

import dataclasses
import threading
from datetime import datetime
from typing import Callable

from . import ops, printers
from .bucketserver import BucketServer
from .errors import UserError
from .snapshot import IgnoreRules, SnapshotError
from .sync import Cancelled, Result

LOOK = 0.05      # how often the main thread looks for changes during a cycle


def cycle_line(result: Result | None, error: str | None, when: datetime) -> str:
    stamp = when.strftime("%H:%M:%S")
    if error is not None:
        return f"{stamp} error: {error}"
    if result.up_to_date:
        return f"{stamp} up to date, revision {printers.short_revision(result.revision)}"
    return f"{stamp} " + printers.summary_line(result.plan.summary(), result.revision,
                                               result.applied, result.elapsed)


def watch(kube, name: str, source: str, opts: ops.Options,
          echo: Callable[[str], None] = print) -> None:
    from .watch import TreeWatcher
    cache: dict = {}
    cancel = threading.Event()
    opts = dataclasses.replace(opts, progress=False)     # one line per cycle, no bars
    with BucketServer(kube, kube.namespace, name, timeout=opts.timeout) as server, \
            TreeWatcher(source, ignored=IgnoreRules(source)) as watcher:
        echo(f"watching {source} for session {name} in namespace {kube.namespace} "
             f"(Ctrl-C to stop)")
        try:
            while True:
                cancel.clear()
                outcome: dict = {}
                worker = threading.Thread(
                    target=_cycle, daemon=True, name="gitops-run-sync",
                    args=(kube, name, source, opts, server, cancel, cache, outcome))
                worker.start()
                while worker.is_alive():
                    if watcher.changed_since():
                        cancel.set()            # a newer snapshot supersedes this one
                    worker.join(LOOK)
                if "cancelled" not in outcome:
                    echo(cycle_line(outcome.get("result"), outcome.get("error"), datetime.now()))
                if not watcher.changed_since():
                    watcher.wait()
                else:
                    watcher.wait(0)
        except KeyboardInterrupt:
            cancel.set()
            echo(f"stopped watching; session {name} stays (remove it with "
                 f"`kubectl gitops-run down {name}`)")


def _cycle(kube, name, source, opts, server: BucketServer, cancel, cache, outcome) -> None:
    try:
        outcome["result"] = ops.sync(kube, name, source, opts, server=server, cancel=cancel,
                                     cache=cache)
    except Cancelled:
        outcome["cancelled"] = True
    except (UserError, SnapshotError) as e:
        outcome["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - keep watching; say what broke
        outcome["error"] = f"{type(e).__name__}: {e}"
