"""What a long build tells the user on stderr, so that it never looks hung.

A line when a step ends, with its time and where it went (fetching, waiting
for a compile slot, compiling), and every PROGRESS_EVERY seconds one line per
step still running.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time

# A step that has not finished says how long it has run, this often (seconds).
PROGRESS_EVERY = 30.0


class Progress:
    """Steps report through it from their own threads; `ticking` adds the
    periodic lines while a build runs."""

    def __init__(self, quiet: bool = False, every: float = PROGRESS_EVERY,
                 clock=time.monotonic):
        self.quiet, self.every, self.clock = quiet, every, clock
        self._lock = threading.Lock()
        self._running: dict[str, _Step] = {}

    def say(self, msg: str) -> None:
        if not self.quiet:
            with self._lock:
                print(msg, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def step(self, name: str):
        st = _Step(self.clock)
        with self._lock:
            self._running[name] = st
        try:
            yield st
        except BaseException as e:
            self.say(f"failed {name} after {st.total():.0f} s" + (f": {e}" if str(e) else ""))
            raise
        else:
            self.say(f"built {name} in {st.total():.0f} s ({st.finish()})")
        finally:
            with self._lock:
                del self._running[name]

    def report(self) -> None:
        with self._lock:
            lines = [f"  {name}: {st.total():.0f} s, {st.phase} ..."
                     for name, st in self._running.items()]
        for line in lines:
            self.say(line)

    @contextlib.contextmanager
    def ticking(self):
        """Report every `every` seconds until the block ends."""
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(self.every):
                self.report()
        t = threading.Thread(target=tick, name="build-progress", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()


class _Step:
    """One step's phases and how long each took."""

    def __init__(self, clock):
        self.clock = clock
        self.started = self.since = clock()
        self.phase = "fetching"
        self.took: dict[str, float] = {}

    def enter(self, phase: str) -> None:
        now = self.clock()
        self.took[self.phase] = now - self.since
        self.phase, self.since = phase, now

    def total(self) -> float:
        return self.clock() - self.started

    def finish(self) -> str:
        """End the last phase; say how long each took (a wait too short to
        count is left out)."""
        self.enter("done")
        return ", ".join(f"{phase} {s:.0f} s" for phase, s in self.took.items() if s >= 1)
