"""The terminal: the one place that asks whether stderr is a TTY, and what
operations' reports and watch cycles look like there."""
from __future__ import annotations

import sys
import threading
import time
from datetime import datetime

import click

from ..ops.report import Reporter
from ..ops.watch import Screen
from . import output

BAR_MIN_FILES = 50      # smaller uploads finish before a bar would help
BAR_EVERY = 0.1         # seconds between redraws


def is_tty() -> bool:
    return sys.stderr.isatty()


class Warnings(Reporter):
    """For scripts: only warnings, on stderr."""

    def warning(self, message: str) -> None:
        click.echo(f"warning: {output.escape(message)}", err=True)

    def forwarding(self, url: str, target: str) -> None:
        click.echo(output.escape(output.forward_line(url, target)))

    def forward_problem(self, message: str) -> None:
        click.echo(output.escape(message), err=True)


class TerminalReporter(Warnings):
    """Waits and an upload counter on a terminal's stderr; warnings always."""

    def __init__(self):
        self._lock = threading.Lock()
        self._shown = 0.0
        self._bar = False

    def waiting(self, what: str) -> None:
        click.echo(output.escape(what), err=True)

    def judged(self, healthy: bool, message: str) -> None:
        click.echo(output.escape(message), err=True)

    def uploading(self, files_done: int, files: int, bytes_done: int, total: int) -> None:
        if files < BAR_MIN_FILES:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._shown < BAR_EVERY and files_done != files:
                return
            self._shown, self._bar = now, True
            pct = 100 * bytes_done // max(total, 1)
            click.echo(f"\ruploading {files_done}/{files} files ({pct}%)", err=True, nl=False)

    def uploaded(self) -> None:
        if self._bar:
            click.echo("\r\033[K", err=True, nl=False)
            self._bar = False


def reporter(progress: bool = True) -> Reporter:
    """Progress on a terminal only (scripts stay quiet); warnings always."""
    return TerminalReporter() if progress and is_tty() else Warnings()


class WatchScreen(Screen):
    """One line per watch cycle on stdout."""

    def started(self, source: str, session: str, namespace: str) -> None:
        click.echo(output.escape(f"watching {source} for session {session} in namespace "
                                 f"{namespace} (Ctrl-C to stop)"))

    def cycle(self, result, error: str | None) -> None:
        click.echo(output.escape(output.cycle_line(result, error, datetime.now())))

    def stopped(self, session: str) -> None:
        click.echo(f"stopped watching; session {session} stays (remove it with "
                   f"`kubectl gitops-run down {session}`)")
