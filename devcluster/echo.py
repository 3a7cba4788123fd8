"""The dev cluster's second image (`gitops-run-echo`, any tag): a tiny HTTP
server whose answer names its pod and echoes $GREETING, so tests and new
users reach a real process behind a pod. devcluster/runtime.py runs it with
the pod's env. ECHO_EXIT=<code> makes it exit at once (a crashing app)."""
from __future__ import annotations

import argparse
import http.server
import json
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    # as most servers: keep-alive, and TCP_NODELAY (else the body, written
    # after the headers, waits for the peer's delayed ACK: 40 ms a request)
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):   # noqa: N802 - http.server's name
        body = json.dumps({"pod": os.environ.get("POD_NAME", ""),
                           "greeting": os.environ.get("GREETING", ""),
                           "path": self.path}).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):      # quiet: the runtime keeps its log small
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    if os.environ.get("ECHO_EXIT"):
        return int(os.environ["ECHO_EXIT"])
    http.server.ThreadingHTTPServer.daemon_threads = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
