"""``scoperouter serve``: the router daemon (HTTP ingress, optional Pub/Sub streaming pull,
durable SQLite state, sinks from routes.yaml). Exits 0 after a graceful SIGTERM. Relation
data is reloaded when its CSV files change (--relations-refresh) or on SIGHUP; a registry
change needs a restart."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoperouter.commands import iso_date
from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry.loader import (
    load_config,
    relation_csv_paths,
    relation_watch_paths,
)
from scoperouter.processor_registry.models import ServerSpec

if TYPE_CHECKING:
    from scoperouter.runtime.affinity import Placement
    from scoperouter.runtime.config import ServeConfig
    from scoperouter.runtime.reload import Fingerprint

logger = logging.getLogger("scoperouter.serve")


def _duration(text: str) -> float:
    """A duration like 60s / 5m, or a bare number of seconds (0 included): what the setting's
    environment variable and ``server:`` key take (:func:`scoperouter.runtime.config.seconds`)."""
    from scoperouter.runtime.config import seconds

    try:
        return seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the router daemon", description=__doc__)
    p.add_argument("--config", default="routes.yaml", help="registry (default ./routes.yaml)")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print every setting, its value and where it came from (flag, environment, "
        "routes.yaml server:, default), then exit",
    )
    p.add_argument("--json", action="store_true", help="with --print-config: JSON")
    # Every default is None (= not given): scoperouter.runtime.config resolves flag >
    # environment > routes.yaml server: > default when serve runs, never at parser build.
    p.add_argument(
        "--state-dir", type=Path, help="SQLite state and outbox (default ./.scoperouter)"
    )
    p.add_argument(
        "--state",
        help="state store: postgresql://user@host/db (windows, outbox and dedupe shared by any "
        "number of replicas on one subscription) or sqlite:///path (the per-window SQLite "
        "store); default: the per-window SQLite store --state-dir/state.db. Prefer "
        "SCOPEROUTER_STATE for a DSN with a password",
    )
    p.add_argument(
        "--lease",
        type=_duration,
        help="how long a fired or claimed trigger stays reserved to this replica before "
        "another one may re-send it (default 30s; --state only)",
    )
    p.add_argument("--replica-id", help="this replica's name in leases (default host-pid-random)")
    p.add_argument(
        "--state-lock-timeout",
        type=_duration,
        help="PostgreSQL: a statement waiting this long for a lock (one a frozen or "
        "partitioned replica holds) fails; the batch is nacked and retried (default 30s; "
        "0s: no limit; a lock_timeout in the DSN's options wins)",
    )
    p.add_argument(
        "--state-idle-in-transaction-timeout",
        type=_duration,
        help="PostgreSQL: the server ends a session idle inside a transaction this long "
        "(a frozen replica's), releasing its locks (default 60s; 0s: never; the DSN's "
        "options win)",
    )
    p.add_argument("--host", help="HTTP bind address (default 127.0.0.1; 0.0.0.0 in containers)")
    p.add_argument(
        "--port", type=int, help="HTTP port (default $PORT, else 8080; 0 = any free port)"
    )
    p.add_argument("--subscription", help="Pub/Sub subscription projects/P/subscriptions/S to pull")
    p.add_argument("--as-of", type=iso_date, help="lookback cap date (default: today, UTC)")
    p.add_argument(
        "--no-http",
        dest="http",
        action="store_const",
        const=False,
        help="do not serve HTTP (Pub/Sub only: an error without a subscription, unless the "
        "state store is shared)",
    )
    p.add_argument(
        "--sync", choices=("full", "normal"), help="SQLite synchronous mode (default full)"
    )
    p.add_argument("--max-body-bytes", type=int, help="override server.max_body_bytes")
    p.add_argument(
        "--dedup-horizon", type=_duration, help="override server.dedup_horizon (e.g. 24h)"
    )
    p.add_argument(
        "--bearer-token",
        help="shared push token (overrides server.auth); prefer SCOPEROUTER_BEARER_TOKEN",
    )
    p.add_argument("--dead-letter-topic", help="override server.dead_letter_topic")
    p.add_argument(
        "--log",
        "--execution-log",
        dest="execution_log",
        type=Path,
        help="execution log (SQLite; default <state-dir>/execution_log.sqlite)",
    )
    p.add_argument(
        "--no-log",
        dest="log",
        action="store_const",
        const=False,
        help="do not write the execution log",
    )
    p.add_argument(
        "--execution-log-retention",
        metavar="DURATION",
        help="keep execution-log rows this long; older ones are pruned (default 30d; 0s: forever)",
    )
    p.add_argument(
        "--outbox-max-bytes",
        type=int,
        help="rotate outbox.jsonl (to .1, .2, .3) past this size (default 256 MiB; 0: never)",
    )
    p.add_argument(
        "--outbox-keep",
        type=int,
        metavar="N",
        help="rotated outbox files kept, .1 to .N (default 3); a rotation past them deletes "
        "the oldest (its delivered triggers' lines), with a WARNING",
    )
    p.add_argument(
        "--shadow",
        action="store_const",
        const=True,
        help="every processor in shadow mode: plan, coalesce and log every trigger, call no "
        "target (none is even built); safe beside the production pipeline",
    )
    p.add_argument(
        "--lock-timeout",
        metavar="DURATION",
        help="wait this long for another daemon to release the state dir or the SQLite "
        "state file (default 30s; a plain number is seconds)",
    )
    p.add_argument(
        "--relations-refresh",
        type=_duration,
        metavar="DURATION",
        help="check the relation CSV files for changes this often and reload them "
        "(default 60s; 0 = never poll; SIGHUP always reloads)",
    )
    p.add_argument(
        "--shutdown-timeout",
        metavar="DURATION",
        help="finish in-flight work on SIGTERM within this (default 8s; a plain number is seconds)",
    )
    p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        help="event loop: uvloop when installed (auto, default), or the standard asyncio loop",
    )
    p.add_argument(
        "--cpus",
        metavar="auto|all|LIST",
        help="CPUs the daemon's threads run on: auto (default: one CPU when the process may "
        "use more -- its threads hand work to each other under the GIL, cheaper on one "
        "core), all (the scheduler's choice), or a CPU list like 0 or 2-3",
    )
    p.add_argument("--log-level", help="daemon log level (default INFO)")
    p.set_defaults(func=run)


def resolve_settings(
    args: argparse.Namespace, server: ServerSpec | None, file: str = "routes.yaml"
) -> ServeConfig:
    """Flag > environment > routes.yaml ``server:`` > default (ConfigError on a bad value)."""
    from scoperouter.runtime.config import cli_values, resolve

    yaml = server.model_dump(exclude_unset=True, exclude={"auth"}) if server is not None else {}
    return resolve(cli_values(args), os.environ, yaml, file=file)


def run(args: argparse.Namespace) -> int:
    from scoperouter.runtime import logs
    from scoperouter.runtime.daemon import Daemon, DaemonSettings

    if args.print_config:
        from scoperouter.runtime.config import format_config

        reg = load_config(args.config, with_relations=False).registry
        from scoperouter.runtime.auth_mode import describe_auth

        conf = resolve_settings(args, reg.spec.server, reg.file)
        auth = describe_auth(
            conf["bearer_token"],
            conf.sources["bearer_token"],
            reg.spec.server.auth if reg.spec.server is not None else None,
        ).to_json()
        shown = {**conf.to_json(), "auth": auth}
        print(json.dumps(shown, indent=2) if args.json else format_config(conf, auth=auth))
        return 0
    # a SIGHUP during start-up must not kill the process (the daemon handles it once running)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    fingerprint, read = _relations_fingerprints(args.config) or (None, None)
    cfg = load_config(args.config)
    conf = resolve_settings(args, cfg.registry.spec.server, cfg.registry.file)
    shared = _check_intake(conf)
    logs.configure(conf["log_level"])
    if shared:
        logger.warning(
            "HTTP is off (%s) and no Pub/Sub subscription is set: this replica takes no "
            "events; it fires and dispatches the windows of the shared state store only",
            conf.sources["http"],
            extra={"code": "no_intake"},
        )
    from scoperouter.runtime.reload import log_relation_warnings

    log_relation_warnings(cfg.registry, cfg.relations, "start")
    placed = _place(conf["cpus"])  # before any thread starts: the ones started later inherit it
    state_dir: Path = conf["state_dir"]
    settings = DaemonSettings(
        state_dir=state_dir,
        host=conf["host"],
        port=conf["port"],
        subscription=conf["subscription"],
        as_of=conf["as_of"],
        sync=conf["sync"],
        max_body_bytes=conf["max_body_bytes"],
        dedup_horizon_s=conf["dedup_horizon"],
        bearer_token=conf["bearer_token"],
        bearer_source=conf.sources["bearer_token"],
        dead_letter_topic=conf["dead_letter_topic"],
        http_enabled=conf["http"],
        shutdown_timeout_s=conf["shutdown_timeout"],
        lock_timeout_s=conf["lock_timeout"],
        relations_refresh_s=conf["relations_refresh"],
        router_options=conf.router_options(),
        shadow=conf["shadow"],
        outbox_max_bytes=conf["outbox_max_bytes"],
        outbox_keep=conf["outbox_keep"],
        state=conf["state"],
        lease_s=conf["lease"],
        state_lock_timeout_s=conf["state_lock_timeout"],
        state_idle_in_transaction_s=conf["state_idle_in_transaction_timeout"],
        replica_id=conf["replica_id"],
        state_poll_interval_s=conf["state_poll_interval"],
    )
    if settings.subscription:
        from scoperouter.runtime.pubsub_health import check_subscription

        # a missing or forbidden subscription is a clear error (exit 1), not a silent idle pull
        check_subscription(settings.subscription)
    from scoperouter.runtime.state_open import check_state_dir

    # an unusable state dir is a one-line error before the execution log opens in it
    check_state_dir(state_dir)
    # said once the start-up checks passed: a failing check stays a one-line error
    logger.info(placed.describe())
    log = None
    if conf["log"]:
        import sqlite3

        from scoperouter.execution_log import open_log
        from scoperouter.runtime.housekeeping import retention_clock

        log_file = conf["execution_log"] or state_dir / "execution_log.sqlite"
        retention = conf["execution_log_retention"] or None
        try:
            log = open_log(
                log_file,
                retention_s=retention,
                # measured as the state store's retentions: a forward clock step prunes
                # nothing early
                clock=retention_clock(retention or 0.0),
            )
        except (sqlite3.Error, OSError) as exc:  # not a database, truncated, unreadable
            raise ConfigError(
                [
                    ConfigIssue(
                        f"execution log {log_file} is not usable: {exc}; move it away (a "
                        "new one is created) or serve with --no-log"
                    )
                ]
            ) from None

    async def main() -> int:
        from scoperouter.runtime.start_listener import answering_while_starting

        # the port answers (/healthz 200, the rest 503) while the daemon waits for its state
        # lock: a platform that stops the old instance only once the new one listens
        # (Cloud Run) can hand the state dir over; closed before the ingress binds the port
        port = settings.port if settings.http_enabled else 0
        with answering_while_starting(settings.host, port):
            daemon = Daemon(
                cfg.registry,
                cfg.relations,
                settings,
                log=log,
                relations_fingerprint=fingerprint,
                relations_read=read,
            )
        await daemon.run_forever()
        return daemon.exit_code  # 1 after an internal error (runtime/supervise.py)

    loop_factory = _loop_factory(conf["loop"])
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


def _check_intake(conf: ServeConfig) -> bool:
    """With HTTP off and no subscription ``serve`` receives no event: a ConfigError naming
    both settings -- unless the state store is shared (PostgreSQL), where such a replica
    still fires and dispatches the windows the others fill (True: say so at start)."""
    if conf["http"] or conf["subscription"]:
        return False
    from scoperouter.processor_registry.compiled import interpolate_env
    from scoperouter.state import is_postgres_url

    if conf["state"]:
        try:
            location = interpolate_env(str(conf["state"]))  # (server.state: ${ENV})
        except KeyError:
            return False  # the state store's own error says which variable is unset
        if is_postgres_url(location):
            return True
    raise ConfigError(
        [
            ConfigIssue(
                f"HTTP is off ({conf.sources['http']}) and no Pub/Sub subscription is set "
                "(--subscription, SCOPEROUTER_SUBSCRIPTION or server.subscription): serve "
                "would receive no events; set a subscription or serve HTTP"
            )
        ]
    )


def _place(cpus: str) -> Placement:
    """Keep the daemon's threads on the CPUs of the ``cpus`` setting."""
    from scoperouter.runtime import affinity

    try:
        return affinity.apply(cpus)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _relations_fingerprints(config: str) -> tuple[Fingerprint, Fingerprint] | None:
    """(the watched relation files, the CSVs): their sizes and mtimes *before* they are
    read, so a change landing while the daemon starts is picked up once it runs, and the
    timestamp gauges show the files read, not one replaced since. None if the registry does
    not load (the full load right after reports why)."""
    from scoperouter.runtime.reload import relation_fingerprint

    try:
        registry = load_config(config, with_relations=False).registry
    except ConfigError:
        return None
    watched = relation_watch_paths(registry)
    csvs = tuple(relation_csv_paths(registry).values())
    fp = relation_fingerprint(watched)
    return fp, fp if tuple(watched) == csvs else relation_fingerprint(csvs)


def _loop_factory(choice: str) -> Any:
    """uvloop's loop factory when wanted and installed (about 1.5x the HTTP throughput)."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("error: --loop uvloop but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop
