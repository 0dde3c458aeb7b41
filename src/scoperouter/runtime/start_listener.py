"""The port answered while ``serve`` starts: from before it takes its state lock until the
ingress takes the port over.

Invariant: while it is open, ``GET /healthz`` answers 200 (the process is alive) and every
other request 503 ``starting`` (``/readyz`` included: nothing is routed, nothing is
accepted); it is closed before the ingress binds the same port. A platform that waits for a
new instance to listen before it stops the old one (Cloud Run's startup probe, a
Kubernetes TCP probe) sees the new instance start while it waits for the old one's
state-dir lock: without it the new instance never listened, its revision failed to become
ready and the old instance was never stopped (deploy/README.md, "One instance"). No port
(``0``, or one taken) means no listener: the ingress reports a taken port as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger("scoperouter.runtime")

_STARTING = json.dumps(
    {"error": "starting", "detail": "scoperouter is starting (waiting for its state): retry later"}
).encode()
_ALIVE = json.dumps({"status": "starting"}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        alive = self.command == "GET" and self.path.split("?", 1)[0] == "/healthz"
        body = _ALIVE if alive else _STARTING
        self.send_response(200 if alive else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if not alive:
            self.send_header("Retry-After", "5")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        return  # no access log, as the ingress keeps none


@contextlib.contextmanager
def answering_while_starting(host: str, port: int) -> Iterator[bool]:
    """Answer ``host:port`` (``/healthz`` 200, the rest 503 ``starting``) for the block;
    yields whether it listens. Closed (the port free again) when the block ends, whatever
    it raised."""
    if port <= 0:
        yield False
        return
    try:
        server = ThreadingHTTPServer((host, port), _Handler)
    except OSError:  # taken (the ingress will say so) or not ours to bind
        yield False
        return
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="start-listener"
    )
    thread.start()
    try:
        yield True
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
