"""The command line: the click app (app), parameter types (params), what is
printed (output), the terminal (terminal) and shell completion (completion).
The only layer that writes to the terminal (docs/architecture.md, "Layers")."""
from .app import main

__all__ = ["main"]
