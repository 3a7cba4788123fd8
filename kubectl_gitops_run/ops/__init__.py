"""The operations behind the commands: they compose the core and the adapters,
report through the Reporter they are given, and return their results."""
from .down import down
from .forward import Forwards
from .options import Options
from .publish import Result
from .sessions import find_sessions, resolve, source_of
from .snapshots import scanner
from .sync import sync
from .up import up
from .watch import Screen, watch

__all__ = ["Forwards", "Options", "Result", "Screen", "down", "find_sessions", "resolve", "scanner", "source_of", "sync", "up",
           "watch"]
