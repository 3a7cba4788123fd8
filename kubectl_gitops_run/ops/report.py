"""How operations tell what they are doing: a Reporter they are given.

Operations never write to the terminal (docs/architecture.md, "Layers"); the
CLI hands them a Reporter and decides what of it people see. This one says
nothing, which is right for scripts, tests and watch mode's worker.
"""
from __future__ import annotations


class Reporter:
    def waiting(self, what: str) -> None:
        """A step that may take a while has started: `what` it waits for."""

    def warning(self, message: str) -> None:
        """Something the user should know, that does not stop the command."""

    def uploading(self, files_done: int, files: int, bytes_done: int, total: int) -> None:
        """Upload progress (called from upload threads, one call per file)."""

    def uploaded(self) -> None:
        """The upload finished (or failed): clear any progress shown."""

    def judged(self, healthy: bool, message: str) -> None:
        """The plugin's own health verdict on what Flux applied, ahead of Flux's."""

    def forwarding(self, url: str, target: str) -> None:
        """A port-forward's target first has a Ready pod: where to reach it."""

    def forward_problem(self, message: str) -> None:
        """A connection through a port-forward found no Ready pod in time."""


SILENT = Reporter()
