"""Assembles the daemon: store, sinks, router, HTTP ingress, optional Pub/Sub source, and
graceful shutdown on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from scoperouter.backfill.http_api import backfill_api
from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry, interpolate_env
from scoperouter.processor_registry.models import ServerSpec, parse_duration
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.runtime.http import IngressApp, TokenVerifier, bearer_verifier, oidc_verifier
from scoperouter.runtime.loop_runtime import loop_wanted
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.pubsub import PubSubSource
from scoperouter.runtime.reload import Fingerprint, RelationReloader
from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.runtime.sinks import SinkFactory, topic_path
from scoperouter.runtime.state_open import (
    EMBEDDED_STATE,
    OLD_STATE,
    acquire_state_lock,
    check_state_dir,
    default_replica_id,
    import_old_state,
    open_embedded_state,
    open_shared_state,
    open_store,
    release_state_lock,
)
from scoperouter.runtime.store import Store, SyncMode
from scoperouter.state import StateStore, StoreOptions

logger = logging.getLogger("scoperouter.runtime.daemon")


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


@dataclass
class DaemonSettings:
    state_dir: Path = Path(".scoperouter")
    host: str = "127.0.0.1"
    port: int = 8080
    subscription: str | None = None
    as_of: date | None = None
    sync: SyncMode = "full"
    # None = take from routes.yaml ``server:`` (then the defaults below)
    max_body_bytes: int | None = None
    dedup_horizon_s: float | None = None
    bearer_token: str | None = None
    dead_letter_topic: str | None = None
    http_enabled: bool = True
    shutdown_timeout_s: float = 8.0
    lock_timeout_s: float = 30.0
    relations_refresh_s: float = 60.0  # poll relation files for changes; 0 = only on SIGHUP
    router_options: dict[str, Any] = field(default_factory=dict)
    # serve --shadow: every processor in shadow mode (no target built or called)
    shadow: bool = False
    env: Mapping[str, str] | None = None
    outbox_max_bytes: int = 0  # rotate outbox files past this size (0: never)
    # serve --state: a state store location (postgresql://..., sqlite:///...); None = the
    # embedded per-window SQLite store in state_dir (else routes.yaml server.state)
    state: str | None = None
    lease_s: float = 30.0
    replica_id: str | None = None
    state_poll_interval_s: float = 0.2


def _expand(text: str, env: Mapping[str, str] | None, path: tuple[str | int, ...]) -> str:
    try:
        return interpolate_env(text, env)
    except KeyError as exc:
        raise ConfigError(
            [ConfigIssue(f"environment variable {exc.args[0]} is not set", path=path)]
        ) from exc


class Daemon:
    """One router instance with its sources. ``await start()``, ``await stop()``."""

    def __init__(
        self,
        registry: CompiledRegistry,
        relations: RelationStore,
        settings: DaemonSettings,
        *,
        log: ExecutionLog | None = None,
        verifier: TokenVerifier | None = None,
        relations_fingerprint: Fingerprint | None = None,
    ) -> None:
        """``relations_fingerprint``: the relation files as stat-ed before ``relations`` was
        read (see :func:`scoperouter.runtime.reload.relation_fingerprint`)."""
        self.registry = registry
        self.settings = settings
        self.log = log
        server = registry.spec.server or ServerSpec()
        self.server_spec = server
        env = settings.env
        self.max_body_bytes = settings.max_body_bytes or server.max_body_bytes
        horizon = settings.dedup_horizon_s
        if horizon is None:
            horizon = parse_duration(server.dedup_horizon)
        if verifier is None:
            if settings.bearer_token:
                verifier = bearer_verifier(settings.bearer_token)
            elif server.auth is not None and server.auth.bearer_token is not None:
                verifier = bearer_verifier(
                    _expand(server.auth.bearer_token, env, ("server", "auth", "bearer_token"))
                )
            elif server.auth is not None and server.auth.oidc is not None:
                o = server.auth.oidc
                verifier = oidc_verifier(
                    _expand(o.audience, env, ("server", "auth", "oidc", "audience")),
                    _expand(o.service_account, env, ("server", "auth", "oidc", "service_account"))
                    if o.service_account
                    else None,
                )
        self.verifier = verifier
        check_state_dir(settings.state_dir)
        # outbox lines reach the disk before the trigger is marked done when sync is full
        self.sinks = SinkFactory(
            settings.state_dir,
            env=env,
            fsync=settings.sync == "full",
            outbox_max_bytes=settings.outbox_max_bytes,
        )
        # shadow processors get no sink at all (no client, no credentials): shadow is safe
        # against production; with --shadow not even the default target is built
        self.modes = {
            n: ("shadow" if settings.shadow or p.mode == "shadow" else "live")
            for n, p in registry.processors.items()
        }
        # compiled against the registry's fields (its date_field, each target's users), as
        # `validate` checked them: a mapping that validates builds here
        by_processor = {
            n: self.sinks.build(n, p.target, registry)
            for n, p in registry.processors.items()
            if self.modes[n] == "live"
        }
        fallback = (
            None
            if settings.shadow
            else self.sinks.build("<default>", registry.spec.defaults.target, registry)
        )
        dl_topic = settings.dead_letter_topic or server.dead_letter_topic
        dl_pub = None
        if dl_topic:
            try:
                dl_path = topic_path(_expand(dl_topic, env, ("server", "dead_letter_topic")), None)
            except ValueError as exc:
                raise ConfigError(
                    [ConfigIssue(str(exc), path=("server", "dead_letter_topic"))]
                ) from exc
            publisher = self.sinks.publisher

            async def dl_pub_fn(payload: dict[str, Any]) -> None:
                data = json.dumps(payload, default=str).encode()
                await publisher.publish(dl_path, data, {"kind": str(payload.get("kind"))}, None)

            dl_pub = dl_pub_fn
        state_loc = settings.state or server.state
        self.store: Store | None = None
        self.state_store: StateStore | None = None
        self._lock_fd: int | None = None
        store_opts = StoreOptions(
            owner=settings.replica_id or default_replica_id(),
            lease_s=settings.lease_s,
            date_field=registry.date_field,
        )
        if state_loc:
            self.state_store = open_shared_state(
                _expand(state_loc, env, ("server", "state")),
                store_opts,
                settings.sync,
                exclusive=True,  # SQLite: one daemon per file (PostgreSQL: no lock)
                lock_timeout_s=settings.lock_timeout_s,
            )
            try:
                import_old_state(self.state_store, settings.state_dir / OLD_STATE, registry)
            except ConfigError:
                self.state_store.close()  # and its lock: nothing of this daemon runs
                raise
        else:
            # the state dir is ours only once the configuration is known to be usable
            self._lock_fd = acquire_state_lock(settings.state_dir, settings.lock_timeout_s)
            try:
                self._open_state_dir(registry, store_opts)
            except ConfigError:
                if self.state_store is not None:
                    self.state_store.close()
                release_state_lock(self._lock_fd)
                raise
        self.metrics = Metrics()
        opts = RouterOptions(
            as_of=settings.as_of,
            dedup_horizon_s=horizon,
            shadow=settings.shadow,
            **settings.router_options,
        )
        for n, mode in self.modes.items():
            self.metrics.processor_mode.labels(n, mode).set(1)
        shadowed = sorted(n for n, m in self.modes.items() if m == "shadow")
        if shadowed:
            logger.warning(
                "shadow mode: %d of %d processors are planned and logged, never dispatched: %s",
                len(shadowed),
                len(self.modes),
                ", ".join(shadowed),
                extra={"mode": "shadow", "shadow_processors": shadowed},
            )
        self.router: Router
        if self.state_store is not None:
            self.router = SharedRouter(
                registry,
                relations,
                self.state_store,
                by_processor,
                fallback_sink=fallback,
                metrics=self.metrics,
                options=opts,
                log=log,
                dead_letter_publisher=dl_pub,
                poll_interval_s=settings.state_poll_interval_s,
            )
        else:
            assert self.store is not None
            self.router = Router(
                registry,
                relations,
                self.store,
                by_processor,
                fallback_sink=fallback,
                metrics=self.metrics,
                options=opts,
                log=log,
                dead_letter_publisher=dl_pub,
            )
        self.reloader = RelationReloader(
            registry,
            self.router,
            self.metrics,
            interval_s=settings.relations_refresh_s,
            fingerprint=relations_fingerprint,
            on_swap=self._relations_swapped,
        )
        self.ingress = IngressApp(
            self.router,
            max_body_bytes=self.max_body_bytes,
            verifier=verifier,
            body_timeout_s=parse_duration(server.body_timeout or "30s"),
            max_connections=server.max_connections or 1000,
        )
        self.ingress.backfills = backfill_api(  # POST /backfills (issue 15)
            registry,
            lambda: self.router.relations,
            settings.state_dir,
            by_processor,
            settings.as_of,
            shadow=settings.shadow,
        )
        self.source = (
            PubSubSource(
                settings.subscription,
                self.router,
                # replicas: what a killed one held is redelivered after 10 s, not 60 s
                lease_extension_s=10.0
                if self.state_store is not None and self.state_store.shared
                else 0.0,
            )
            if settings.subscription
            else None
        )
        if self.source is not None:  # /readyz is 503 while the streaming pull is down
            self.ingress.add_readiness_check(self.source.readiness)
        # a background task of the router that died (supervise): 503 until the restart
        self.ingress.add_readiness_check(lambda: self.router.supervisor.fatal)
        self.exit_code = 0  # 1 after an internal error stopped the daemon (run_forever)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._heap_frozen = False
        self._gc_thresholds = gc.get_threshold()  # restored by unfreeze_heap

    def _open_state_dir(self, registry: CompiledRegistry, options: StoreOptions) -> None:
        """No ``--state``: the embedded per-window SQLite store in the state dir (the old
        snapshot + journal store imported into it once); the old store itself when the
        registry asks for the closed loop, which keeps its state there only."""
        state_dir, sync = self.settings.state_dir, self.settings.sync
        if loop_wanted(registry):
            logger.info(
                "routes.yaml configures the closed loop (run_retries, completion_timeout, "
                "retry_backoff or barrier), which keeps its state in the snapshot + journal "
                "store: using %s, "
                "not the per-window store",
                state_dir / OLD_STATE,
                extra={"state": str(state_dir / OLD_STATE), "closed_loop": True},
            )
            self.store = open_store(state_dir / OLD_STATE, sync)
            return
        self.state_store = open_embedded_state(
            state_dir / EMBEDDED_STATE,
            options,
            sync,
            exclusive=True,  # a --state sqlite:/// of another daemon may name the file
            lock_timeout_s=self.settings.lock_timeout_s,
        )
        import_old_state(self.state_store, state_dir / OLD_STATE, registry, retire=True)

    async def start(self) -> None:
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
                keepalive_timeout=parse_duration(limits.header_timeout or "10s"),
            )
            await self._runner.setup()
            runner = self._runner
            assert runner.server is not None  # (set up)
            self.ingress.route_events_first(runner.server)
            conns = getattr(runner.server, "_connections", None)
            self.ingress.connection_count = (  # per request: the set's len, one C call
                conns.__len__ if conns is not None else lambda: _open_connections(runner.server)
            )
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
