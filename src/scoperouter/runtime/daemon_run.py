"""Runs the assembled daemon (:class:`.daemon.Daemon`): start (which first records each
processor's effective mode in the execution log, for ``report``), graceful stop, the signals
(SIGTERM / SIGINT stop, SIGHUP reloads relation data), and the heap freeze once started.

Invariant: stop() closes in order -- intake first (new requests get 503), then the router
finishes (within the shutdown budget) and answers every message it holds while the Pub/Sub
pull is still open, and only then are the sinks, the state store, its lock and the
execution log closed; the heap freeze (process-wide) is undone before anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry.models import parse_seconds
from scoperouter.runtime.auth_mode import AuthMode, log_auth
from scoperouter.runtime.state_open import release_state_lock

if TYPE_CHECKING:
    from scoperouter.execution_log.api import ExecutionLog
    from scoperouter.processor_registry.models import ServerSpec
    from scoperouter.runtime.daemon import DaemonSettings
    from scoperouter.runtime.http import IngressApp
    from scoperouter.runtime.pubsub import PubSubSource
    from scoperouter.runtime.reload import RelationReloader
    from scoperouter.runtime.router import Router
    from scoperouter.runtime.sinks import SinkFactory
    from scoperouter.runtime.store import Store
    from scoperouter.state import StateStore

# what runs logs as the daemon, as before the split (log filters name this logger)
logger = logging.getLogger("scoperouter.runtime.daemon")


_IDLE_SAID_EVERY_S = 60.0


def idle_closer(server: Any) -> Callable[[], int]:
    """A function closing aiohttp's connections with no request in progress (an idle
    keep-alive, a head not yet finished), for :meth:`~scoperouter.runtime.http.IngressApp._busy` to call only with more
    than ``max_connections`` open, so that silent sockets cannot hold the cap against real
    work. It returns how many it closed and logs at most once a minute (its own pace: one
    per server). Uses aiohttp's private ``_connections`` and ``_request_in_progress`` (as
    :func:`_open_connections`); without them it closes none."""
    said = [-_IDLE_SAID_EVERY_S, 0]  # (when last logged, closed since)

    def close_idle() -> int:
        conns = getattr(server, "_connections", None) if server is not None else None
        closed = 0
        for handler in list(conns or ()):
            if getattr(handler, "_request_in_progress", True):
                continue
            transport = getattr(handler, "transport", None)
            if transport is None or transport.is_closing():
                continue
            handler.force_close()
            transport.close()
            closed += 1
        if closed:
            said[1] += closed
            now = time.monotonic()
            if now - said[0] >= _IDLE_SAID_EVERY_S:
                logger.warning(
                    "over max_connections: closed idle connections (no request in progress) "
                    "to make room: %d since the last such line",
                    said[1],
                    extra={"closed": said[1]},
                )
                said[0], said[1] = now, 0
        return closed

    return close_idle


def _open_connections(server: Any) -> int:
    """aiohttp's open connections, checked per request: its private set when it has one
    (the ``connections`` property copies every connection into a list), else the property."""
    if server is None:
        return 0
    conns = getattr(server, "_connections", None)
    return len(conns if conns is not None else server.connections)


# allocations between young-generation collections (freeze_heap): above what the execution
# log holds between two flushes (a second of rows and pending outcomes: 20-30k objects at
# saturation), so its buffer is freed before a collection would scan it
GC_GEN0_THRESHOLD = 100_000


class DaemonRun:
    """The running half of :class:`.daemon.Daemon` (which builds every attribute below)."""

    settings: DaemonSettings
    server_spec: ServerSpec
    log: ExecutionLog | None
    modes: dict[str, str]  # each processor's effective mode (serve --shadow included)
    auth: AuthMode  # what authenticates POST /events and POST /backfills (logged at start)
    sinks: SinkFactory
    store: Store | None
    state_store: StateStore | None
    _lock_fd: int | None
    router: Router
    reloader: RelationReloader
    ingress: IngressApp
    source: PubSubSource | None
    exit_code: int
    _runner: web.AppRunner | None
    port: int | None
    _heap_frozen: bool
    _gc_thresholds: tuple[int, int, int]

    async def start(self) -> None:
        # the mode each processor runs in from now, for `report` (serve --shadow is not in
        # routes.yaml): a processor without runs takes it; the registry is not reloaded
        # while running (a mode change is a restart), so once at start is every change
        record = getattr(self.log, "record_modes", None)
        if record is not None and not await asyncio.to_thread(record, self.modes):
            logger.info("the execution log keeps no processor modes: report says 'unknown'")
        # backfills stored running by a process that died are interrupted, before any GET
        await asyncio.to_thread(self.ingress.backfills.recover)
        await self.router.start()
        await self.reloader.start()
        if self.settings.http_enabled:
            limits = self.server_spec
            # aiohttp closes a connection that has not sent a complete request head within
            # keepalive_timeout (and an idle keep-alive one after it): the header timeout
            self._runner = web.AppRunner(
                self.ingress.app,
                access_log=None,
                shutdown_timeout=2.0,
                keepalive_timeout=parse_seconds(limits.header_timeout or "10s"),
            )
            await self._runner.setup()
            runner = self._runner
            assert runner.server is not None  # (set up)
            self.ingress.route_events_first(runner.server)
            conns = getattr(runner.server, "_connections", None)
            self.ingress.connection_count = (  # per request: the set's len, one C call
                conns.__len__ if conns is not None else lambda: _open_connections(runner.server)
            )
            self.ingress.close_idle = idle_closer(runner.server)
            site = web.TCPSite(
                self._runner,
                self.settings.host,
                self.settings.port,
                backlog=limits.listen_backlog or 2048,
            )
            try:
                await site.start()
            except OSError as exc:  # port in use, unknown host, no permission: one line
                where = f"{self.settings.host}:{self.settings.port}"
                raise ConfigError(
                    [ConfigIssue(f"cannot listen on {where}: {exc.strerror or exc}")]
                ) from None
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
            logger.info(
                "HTTP ingress listening", extra={"host": self.settings.host, "port": self.port}
            )
            log_auth(self.auth, self.settings.host)
        if self.source is not None:
            self.source.start()

    async def stop(self) -> None:
        """Graceful: stop intake, finish in-flight work, keep windows durable."""
        t0 = time.monotonic()
        self.unfreeze_heap()  # first: gc.freeze is process-wide, undo it whatever fails below
        budget = self.settings.shutdown_timeout_s
        self.router.close_intake()  # new requests get 503 right away
        await self.reloader.stop()
        if self.source is not None:  # pulled messages are nacked from now on
            await self.source.stop_pulling()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.ingress.backfills.close()
        # the router finishes (within the budget) the batches it holds and answers every
        # message; the source acks / nacks them through its still open pull, and closes it
        # once they are all answered (an ack after the close is dropped: Pub/Sub would
        # redeliver a committed message)
        router_stop = asyncio.ensure_future(
            self.router.stop(timeout=max(0.5, budget - (time.monotonic() - t0)))
        )
        try:
            if self.source is not None:
                await self.source.stop(timeout=min(3.0, budget / 3), answered=router_stop)
        finally:
            await router_stop
        await self.sinks.close()
        try:
            if self.store is not None:
                self.store.close()
            if self.state_store is not None:
                self.state_store.close()
        except Exception as exc:  # a failing disk or database: the next start reads the state
            logger.error("state store: close failed (%s: %s)", type(exc).__name__, exc)
        if self._lock_fd is not None:
            release_state_lock(self._lock_fd)
        if self.log is not None:
            try:
                self.log.close()
            except Exception:
                logger.exception("execution log: close failed")
        logger.info("stopped", extra={"seconds": round(time.monotonic() - t0, 3)})

    def freeze_heap(self) -> None:
        """Exempt everything alive once the daemon has started from the cyclic garbage
        collector (``gc.freeze``): the imported modules, the registry and the relation data
        are hundreds of thousands of objects that live as long as the process, and a full
        collection walks them all -- a 20-40 ms stop of the event loop a few times a minute
        under load, which dominated the p99 ingest-to-dispatch latency. Frozen objects are
        still freed by reference counting; only their cycles are no longer looked for.

        The youngest generation is collected every ``GC_GEN0_THRESHOLD`` allocations
        instead of every 700: an event allocates hundreds of short-lived containers that
        reference counting frees anyway, and scanning them every few events cost ~6% of
        ``serve``'s CPU per event at saturation (issue 16, ``bench/daemon.py``). At 20,000
        a collection still came about once a second at saturation, each scanning the
        execution log's unflushed rows and outcomes (15-20 ms with the interpreter lock
        held, ~3% of the CPU per event, measured with ``gc.callbacks``); at 100,000 none
        came in a saturated run."""
        gc.collect()
        gc.freeze()
        if not self._heap_frozen:
            self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(GC_GEN0_THRESHOLD, *self._gc_thresholds[1:])
        self._heap_frozen = True

    def unfreeze_heap(self) -> None:
        """Undo :meth:`freeze_heap` (at stop)."""
        if self._heap_frozen:
            gc.unfreeze()
            gc.set_threshold(*self._gc_thresholds)
            self._heap_frozen = False

    def _relations_swapped(self) -> None:
        """After a relation reload: the new data is long-lived too, so freeze again -- after
        one full collection of everything (unfrozen first), so that nothing of the replaced
        data that sits in a reference cycle is kept for good. One full pause per reload."""
        if self._heap_frozen:
            gc.unfreeze()
            self.freeze_heap()

    async def run_forever(self) -> None:
        """Start, reload relation data on SIGHUP, wait for SIGTERM/SIGINT -- or for an
        internal error (a background task of the router died: :mod:`.supervise`), then
        stop; :attr:`exit_code` is 1 after an internal error."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            loop.add_signal_handler(signal.SIGHUP, self.reloader.request_reload)
        self.router.supervisor.on_fatal = lambda _why: stop.set()
        try:
            await self.start()
        except BaseException:
            await self.stop()  # what did start (router, reloader, store, lock) is released
            raise
        self.freeze_heap()
        await stop.wait()
        if self.router.supervisor.fatal is not None:
            self.exit_code = 1
            logger.error("shutting down after an internal error (exit status 1)")
        else:
            logger.info("signal received, shutting down")
        await self.stop()
