"""Errors meant for people: the CLI prints `error: <message>` and exits with `code`."""
from __future__ import annotations


class UserError(Exception):
    code = 1


class UsageError(UserError):
    """Bad flags or arguments: exit 2, as kubectl does."""
    code = 2
