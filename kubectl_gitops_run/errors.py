"""Every exception the plugin raises on purpose, in one place.

`UserError` and its kin are meant for people: the CLI prints `error: <message>`
and exits with `code` (docs/architecture.md, invariant 6). The others are
signals between layers that never reach the terminal as they are.
"""
from __future__ import annotations


class UserError(Exception):
    """A failure worded for people: what happened and what to do."""
    code = 1


class UsageError(UserError):
    """Bad flags or arguments: exit 2, as kubectl does."""
    code = 2


class ApiError(UserError):
    """A Kubernetes API call failed; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class WaitTimeout(UserError):
    """A wait ran out of time; callers usually re-word it with what they know."""


class SnapshotError(UserError):
    """A problem with the local tree (a file too large, YAML that does not parse)."""


class LeaseHeld(UserError):
    """Another shell is syncing the same session: `holder` holds its Lease."""

    def __init__(self, message: str, holder: str | None = None):
        super().__init__(message)
        self.holder = holder


class S3Error(Exception):
    """A failed S3 call, worded for people: what, where, HTTP status and S3 code.
    `status` is None when the server could not be reached at all (a dead tunnel)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 bucket: str | None = None, key: str | None = None):
        super().__init__(message)
        self.status, self.code, self.bucket, self.key = status, code, bucket, key


class Cancelled(Exception):
    """A wait was called off: in watch mode, a newer change supersedes it."""


class FileChanged(Exception):
    """A file changed between the scan and its upload: scan again."""


class BucketUnreachable(Exception):
    """The bucket server's tunnel or pod died: reconnect and try again."""


class OutOfWatches(OSError):
    """inotify ran out of watches: the tree watcher falls back to polling."""
