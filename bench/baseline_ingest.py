"""The floor of the daemon's own stack: a bare durable ingest and a bare streaming-pull
subscriber, for ``bench/daemon.py`` to measure ``scoperouter serve`` against.

Invariant: each does only what any durable ingest must -- parse the JSON, append one line,
answer (HTTP 200 / Pub/Sub ack) only after a group-committed ``fdatasync`` covers the line --
on the same stack as the daemon (aiohttp + uvloop when installed; google-cloud-pubsub
streaming pull with the daemon's flow control and the daemon's scheduler). No routing, no
state, no log.

    python bench/baseline_ingest.py http --port 8099 --dir /tmp/bare [--answer lean|app]
    python bench/baseline_ingest.py pull --subscription projects/P/subscriptions/S --dir /tmp/bare
        [--scheduler inline|pool]

``--answer``: ``lean`` (default) takes ``POST /events`` the way the daemon does (its
server's request handler, no route lookup and no coroutine per event, the 200 written as
the daemon's ready bytes, ``runtime/http_ready.py``); ``app`` answers from an aiohttp
application's coroutine handler with a ``web.Response``, the baseline of the runs before
2026-12-04.

``--scheduler``: ``inline`` (default) runs the callback on the client library's consumer
thread, with the daemon's own ``InlineScheduler`` (runtime/pubsub_scheduler.py): the floor
of the stack ``serve`` runs on; ``pool`` keeps the library's default ``ThreadScheduler``
(a thread pool: what the baseline used before ``serve`` had its own scheduler, and what
Google's samples do), for comparison with the figures measured against it.

The HTTP server writes ``ready`` to stdout once listening; both stop on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_MESSAGES = 1000  # the daemon's FlowControl (runtime/pubsub.py)
MAX_BYTES = 100 * 1024 * 1024


def daemon_module(rel: str) -> Any:
    """A module of the installed ``scoperouter`` (``rel``: its path in the package, e.g.
    ``runtime/http_ready.py``) loaded from its file alone: the same code the daemon runs,
    without importing the package (whose ``scoperouter.runtime`` would bring the router in,
    and its memory into the bare server's RSS). The module must import only outside
    libraries."""
    pkg = importlib.util.find_spec("scoperouter")  # finds it without running it
    assert pkg is not None and pkg.origin is not None, "scoperouter is not installed"
    path = Path(pkg.origin).parent / rel
    spec = importlib.util.spec_from_file_location(f"bare_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _datasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


class GroupCommit:
    """Appends lines to one file; a single syncer thread ``fdatasync``s whatever was written
    since its last pass and then calls every waiter of the lines it covered (group commit:
    one ``fdatasync`` per pass, not per line)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._cond = threading.Condition()
        self._waiting: list[Callable[[], None]] = []
        self._stop = False
        self.syncs = 0
        self._thread = threading.Thread(target=self._run, name="bare-syncer", daemon=True)
        self._thread.start()

    def append(self, line: bytes, done: Callable[[], None]) -> None:
        """Write ``line``; ``done`` runs on the syncer thread once it is on disk."""
        with self._cond:
            os.write(self.fd, line)
            self._waiting.append(done)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stop:
                    self._cond.wait()
                if self._stop and not self._waiting:
                    return
                batch, self._waiting = self._waiting, []
            _datasync(self.fd)  # covers every line written before the swap above
            self.syncs += 1
            for done in batch:
                done()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)
        os.close(self.fd)


# ---------------------------------------------------------------------------- HTTP
async def serve_http(host: str, port: int, out: Path, answer: str = "lean") -> None:
    """``answer``: ``lean`` -- ``POST /events`` taken the way ``serve`` takes it
    (``IngressApp.route_events_first`` / ``events_now``: the request handler of the runner's
    server, no route lookup, no coroutine per event when the whole body is buffered, the 200
    written as ``serve``'s ready bytes, ``runtime/http_ready.py``); ``app`` -- an aiohttp
    application's coroutine handler and ``web.Response`` (the baseline of the runs before
    2026-12-04)."""
    from aiohttp import web
    from aiohttp.http import HttpVersion11

    commit = GroupCommit(out / "bare-ingest.jsonl")
    loop = asyncio.get_running_loop()
    ok = b'{"status":"accepted"}'

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            obj = json.loads(body)
        except ValueError:
            return web.Response(status=400)
        if not isinstance(obj, dict):
            return web.Response(status=400)
        fut = loop.create_future()

        def done() -> None:
            loop.call_soon_threadsafe(fut.set_result, None)

        commit.append(body.replace(b"\n", b" ") + b"\n", done)
        await fut
        return web.Response(body=ok, content_type="application/json")

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/events", events)
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if answer == "lean":
        _lean_events(runner.server, commit, loop, events, HttpVersion11)
    await web.TCPSite(runner, host, port, backlog=2048).start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    commit.close()


def _lean_events(
    server: Any, commit: GroupCommit, loop: asyncio.AbstractEventLoop, events: Any, v11: Any
) -> None:
    """``POST /events`` with its whole body buffered answered from a future the syncer
    settles (as the daemon's ``events_now``); any other request through the application."""
    from aiohttp import web

    Ready = daemon_module("runtime/http_ready.py").Ready

    through_app = server.request_handler
    ok = '{"status":"accepted"}'

    def now(resp: web.Response) -> asyncio.Future[Any]:
        fut = loop.create_future()
        fut.set_result(resp)
        return fut

    def handle(request: Any) -> Any:
        if request.raw_path != "/events" or request.method != "POST":
            return through_app(request)
        content, length = request.content, request.content_length
        if length is None or not content.is_eof() or content.exception() is not None:
            return events(request)  # a body still arriving: the coroutine waits for it
        body = content.read_nowait()
        try:
            obj = json.loads(body)
        except ValueError:
            return now(web.Response(status=400))
        if not isinstance(obj, dict):
            return now(web.Response(status=400))
        ready = (
            request.version == v11 and request.keep_alive and request.protocol.access_logger is None
        )
        answer = (
            Ready(ok) if ready else web.Response(body=ok.encode(), content_type="application/json")
        )
        fut = loop.create_future()
        commit.append(
            body.replace(b"\n", b" ") + b"\n",
            lambda: loop.call_soon_threadsafe(fut.set_result, answer),
        )
        return fut

    server.request_handler = handle


# ---------------------------------------------------------------------------- streaming pull
def serve_pull(subscription: str, out: Path, scheduler: str = "inline") -> None:
    """Streaming pull with the daemon's flow control; each message: parse, append, ack once
    the group-committed ``fdatasync`` covers it (acks run on the syncer thread).
    ``scheduler``: ``inline`` (the daemon's) or ``pool`` (the library's default)."""
    from google.cloud import pubsub_v1

    InlineScheduler = daemon_module("runtime/pubsub_scheduler.py").InlineScheduler

    commit = GroupCommit(out / "bare-pull.jsonl")

    def callback(message: Any) -> None:
        data = bytes(message.data)
        try:
            json.loads(data)
        except ValueError:
            message.ack()
            return
        commit.append(data.replace(b"\n", b" ") + b"\n", message.ack)

    client = pubsub_v1.SubscriberClient()
    flow = pubsub_v1.types.FlowControl(max_messages=MAX_MESSAGES, max_bytes=MAX_BYTES)
    sched = InlineScheduler() if scheduler == "inline" else None  # None: ThreadScheduler
    fut = client.subscribe(subscription, callback=callback, flow_control=flow, scheduler=sched)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    fut.cancel()
    with contextlib.suppress(Exception):
        fut.result(timeout=5)
    client.close()
    commit.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("mode", choices=("http", "pull"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--subscription")
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    ap.add_argument("--scheduler", choices=("inline", "pool"), default="inline")
    ap.add_argument("--answer", choices=("lean", "app"), default="lean")
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.mode == "pull":
        if not args.subscription:
            ap.error("pull needs --subscription")
        serve_pull(args.subscription, args.dir, args.scheduler)
        return 0
    factory = None
    if args.loop != "asyncio":
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            if args.loop == "uvloop":
                raise
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve_http(args.host, args.port, args.dir, args.answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
