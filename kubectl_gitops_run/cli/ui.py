"""`ui`: start the page's server, print its URL, open a browser, serve until
Ctrl-C. Imported only by the `ui` command (cli/app.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..adapters.webserver import UiServer
from ..errors import UserError
from ..ops.ui import UiApp

STATIC = Path(__file__).resolve().parent / "ui_static"


def static_files() -> dict[str, bytes]:
    """The page: plain HTML, CSS and JavaScript shipped as package data."""
    return {p.name: p.read_bytes() for p in sorted(STATIC.iterdir()) if p.is_file()}


def has_display() -> bool:
    """Whether a browser could show anything (on Linux: an X or Wayland display)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def serve(kube, all_namespaces: bool, port: int, open_browser: bool) -> None:
    app = UiApp(kube, None if all_namespaces else kube.namespace)
    try:
        server = UiServer(app, static_files(), port)
    except OSError as e:
        raise UserError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}; pick another "
                        f"--port, or leave it out for a free one") from e
    app.start()
    click.echo(server.url)
    if open_browser and has_display():
        import webbrowser
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass            # Ctrl-C is how this command ends: exit 0
    finally:
        server.close()
        app.close()
