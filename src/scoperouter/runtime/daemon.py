"""Assembles the daemon: store, sinks, router, HTTP ingress, optional Pub/Sub source, and
graceful shutdown on SIGTERM / SIGINT (the running half: :mod:`.daemon_run`).

Invariant: constructing a :class:`Daemon` builds its parts and opens its state, nothing
more -- no event is received and no trigger dispatched before :meth:`Daemon.start` -- and a
shadow processor gets no sink (no client, no credentials) until a trigger it fired while it
was live must still be delivered (a restart made it shadow: the dispatcher builds its
target then, :mod:`scoperouter.runtime.modes`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from scoperouter.backfill.http_api import backfill_api
from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry, interpolate_env
from scoperouter.processor_registry.models import ServerSpec, parse_seconds
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.runtime.auth_mode import AuthMode, describe_auth
from scoperouter.runtime.daemon_run import GC_GEN0_THRESHOLD, DaemonRun
from scoperouter.runtime.http import IngressApp, TokenVerifier, bearer_verifier, oidc_verifier
from scoperouter.runtime.loop_runtime import loop_wanted
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.pubsub import PubSubSource
from scoperouter.runtime.reload import Fingerprint, RelationReloader
from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.runtime.sinks import Sink, SinkFactory, topic_path
from scoperouter.runtime.state_handover import carry_into_loop_store, take_old_state
from scoperouter.runtime.state_open import (
    EMBEDDED_STATE,
    OLD_STATE,
    acquire_state_lock,
    check_emptied_loop_store,
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
from scoperouter.state.sqlite import SqliteStateStore

if TYPE_CHECKING:
    from scoperouter.backfill.shared_claim import SharedClaims

logger = logging.getLogger("scoperouter.runtime.daemon")

__all__ = ["GC_GEN0_THRESHOLD", "Daemon", "DaemonSettings"]


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
    # where bearer_token came from (serve: its flag or environment variable)
    bearer_source: str = "--bearer-token"
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
    outbox_keep: int = 3  # rotated outbox files kept (.1 .. .N): the oldest past them is deleted
    # serve --state: a state store location (postgresql://..., sqlite:///...); None = the
    # embedded per-window SQLite store in state_dir (else routes.yaml server.state)
    state: str | None = None
    lease_s: float = 30.0
    # PostgreSQL session bounds (scoperouter.state.pg_session; 0 = off)
    state_lock_timeout_s: float = 30.0
    state_idle_in_transaction_s: float = 60.0
    replica_id: str | None = None
    state_poll_interval_s: float = 0.2


def _expand(text: str, env: Mapping[str, str] | None, path: tuple[str | int, ...]) -> str:
    try:
        return interpolate_env(text, env)
    except KeyError as exc:
        raise ConfigError(
            [ConfigIssue(f"environment variable {exc.args[0]} is not set", path=path)]
        ) from exc


def _backfill_claims(store: StateStore | None, options: StoreOptions) -> SharedClaims | None:
    """The backfill claims of the replicas sharing ``store`` (PostgreSQL), else None."""
    if store is None or not store.shared:
        return None
    from scoperouter.backfill.shared_claim import SharedClaims
    from scoperouter.state.postgres import PostgresStateStore

    if not isinstance(store, PostgresStateStore):
        return None
    return SharedClaims(store.dsn, options.owner, options.lease_s, session=store.session)


NO_LOG = (
    "completion 'event' waits for each run's completion in the daemon's execution log, and "
    "this daemon writes no SQLite execution log (serve --no-log, or a BigQuery log): use "
    "completion 'ack', or the CLI (scoperouter backfill --completion event --log PATH); "
    "replicas on a PostgreSQL state store read the completions from it instead"
)


class Daemon(DaemonRun):
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
        relations_read: Fingerprint | None = None,
    ) -> None:
        """``relations_fingerprint``: the watched relation files as stat-ed before
        ``relations`` was read (see :func:`scoperouter.runtime.reload.relation_fingerprint`);
        ``relations_read``: the CSVs stat-ed then (what the timestamp gauges show)."""
        self.registry = registry
        self.settings = settings
        self.log = log
        server = registry.spec.server or ServerSpec()
        self.server_spec = server
        env = settings.env
        self.max_body_bytes = settings.max_body_bytes or server.max_body_bytes
        horizon = settings.dedup_horizon_s
        if horizon is None:
            horizon = parse_seconds(server.dedup_horizon)
        self.auth = (
            describe_auth(settings.bearer_token, settings.bearer_source, server.auth)
            if verifier is None
            else AuthMode("custom", "verifier")
        )
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
            outbox_keep=settings.outbox_keep,
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

            async def dl_pub_fn(data: bytes, kind: str) -> None:
                await publisher.publish(dl_path, data, {"kind": kind}, None)

            dl_pub = dl_pub_fn
        state_loc = settings.state or server.state
        self.store: Store | None = None
        self.state_store: StateStore | None = None
        self._lock_fd: int | None = None
        store_opts = StoreOptions(
            owner=settings.replica_id or default_replica_id(),
            lease_s=settings.lease_s,
            date_field=registry.date_field,
            lock_timeout_s=settings.state_lock_timeout_s,
            idle_in_transaction_s=settings.state_idle_in_transaction_s,
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
        # a trigger sent by the mode it fired in: one of a processor in shadow mode now
        # that fired live goes to its own target (a processor no longer in routes.yaml: the
        # default one), built when the first such row is sent
        self.router.dispatcher.build_sink = self._late_sink
        self.reloader = RelationReloader(
            registry,
            self.router,
            self.metrics,
            interval_s=settings.relations_refresh_s,
            fingerprint=relations_fingerprint,
            read=relations_read,
            on_swap=self._relations_swapped,
        )
        self.ingress = IngressApp(
            self.router,
            max_body_bytes=self.max_body_bytes,
            verifier=verifier,
            body_timeout_s=parse_seconds(server.body_timeout or "30s"),
            max_connections=server.max_connections or 1000,
        )
        # replicas: a backfill is checked against those running on any of them
        claims = _backfill_claims(self.state_store, store_opts)
        self.ingress.backfills = backfill_api(  # POST /backfills (issue 15)
            registry,
            lambda: self.router.relations,
            settings.state_dir,
            by_processor,
            settings.as_of,
            # completion "event": the completions this daemon's execution log records ...
            log_path=log.path if isinstance(log, SqliteExecutionLog) else None,
            # ... or, on replicas, the shared completion ledger (any replica records them)
            completions=None if claims is None else claims.completion,
            shadow=settings.shadow,
            shared=claims,
            no_event_completions=(
                None if claims is not None or isinstance(log, SqliteExecutionLog) else NO_LOG
            ),
            # a backfill run first sent live of a processor in shadow mode now: its target
            build_sink=self._late_sink,
            # a backfill stopped because its shared claim was lost, counted by why
            on_claim_lost=lambda why: self.metrics.child(
                self.metrics.backfill_claims_lost, why
            ).inc(),
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

    def _late_sink(self, processor: str) -> Sink:
        """The target of ``processor`` built after the start (the dispatcher's
        ``build_sink``): its own, or the default target for one not in routes.yaml."""
        proc = self.registry.processors.get(processor)
        if proc is not None:
            return self.sinks.build(processor, proc.target, self.registry)
        return self.sinks.build("<default>", self.registry.spec.defaults.target, self.registry)

    def _open_state_dir(self, registry: CompiledRegistry, options: StoreOptions) -> None:
        """No ``--state``: the embedded per-window SQLite store in the state dir; the
        snapshot + journal store when the registry asks for the closed loop, which keeps its
        state there only. The store not opened hands its unfinished work over to the one
        opened (:mod:`.state_handover`: the loop turned on or off across a restart, or the
        first start after an upgrade)."""
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
            check_emptied_loop_store(state_dir)  # a 0-byte store: never over loop.json's ledger
            self.store = open_store(state_dir / OLD_STATE, sync)
            try:
                carry_into_loop_store(
                    self.store,
                    registry,
                    options,
                    sync,
                    shadow=self.settings.shadow,
                    lock_timeout_s=self.settings.lock_timeout_s,
                )
            except ConfigError:
                self.store.close()
                raise
            return
        store = open_embedded_state(
            state_dir / EMBEDDED_STATE,
            options,
            sync,
            exclusive=True,  # a --state sqlite:/// of another daemon may name the file
            lock_timeout_s=self.settings.lock_timeout_s,
        )
        self.state_store = store
        assert isinstance(store, SqliteStateStore)
        take_old_state(store, state_dir / OLD_STATE, registry)
