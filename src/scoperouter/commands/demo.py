"""``scoperouter demo [--seed N] [--config C] [--json] [--html FILE] [--export-events FILE] [--log PATH | --no-log] [--faults [--state-dir DIR]]``.

A realistic game day through the router with the reference NBA pipeline
(:mod:`scoperouter.examples.nba`): the same Phase 2 updates run date level (today's behaviour) and
routed, the final warehouses are compared row by row, and the work is costed. ``--json``
prints ``{"seed", "game_date", "events", "outputs_identical", "missed_updates",
"date_level": {...}, "routed": {...}, "work_ratio", "single_update": {...},
"minimum_entity_rows", "minimum_entity_rows_entity_processors",
"minimum_entity_rows_end_of_day", "routed_vs_minimum", "routed_vs_minimum_entity_processors",
"routed_vs_end_of_day_minimum", "date_level_dag_entity_rows",
"work_ratio_vs_date_level_dag", "by_processor"}``; ``by_processor`` maps each processor to
its ``granularity``, ``date_level_runs`` / ``date_level_rows``, ``routed_runs`` /
``routed_rows``, ``minimum_rows`` and ``minimum_rows_end_of_day``. ``single_update`` holds ``date_level_s`` /
``routed_s`` (until the change has reached every phase 3-6: per phase the first run that
rewrote the player's row, slowest phase), ``date_level_all_s`` / ``routed_all_s`` (until
the last run of any processor that rewrote the row has finished, e.g. the date-granularity
daily export) and ``slowest_processor`` (routed; ``date_level_slowest_processor``). The
minimum is ground truth: after each update a full recompute finds the output rows that
really changed (see ``src/scoperouter/examples/nba/README.md``).
``--html`` also writes a small self-contained page; ``--export-events`` the day's Phase 2
events as JSON Lines, in time order (``examples/events/game-day.jsonl`` is that file). The routed run's decisions, dispatches and
completions go to the execution log (``--log``, default ``./.scoperouter/execution_log.sqlite``;
``--no-log`` to skip), so ``scoperouter report`` can analyse the demo day (the log keeps
which demo wrote it -- seed, game date, registry -- so ``report`` rebuilds that registry
and relation data when it has no ``--config`` and no ``./routes.yaml``). Exit 0 when the warehouses are identical, 1 when
they differ (a registry that loses updates) or the config is invalid. The date-level side
is always the registry shipped with the package over the season's relation data, so
``--config`` is compared with today's behaviour, not with itself.
``--faults`` also runs the day with faults (10 % of runs fail, 5 % never report back,
messages up to 60 s late) routed with the ledger off, on, and with the barrier, plus without
faults with and without the barrier (``closed_loop`` in ``--json``; docs/ledger.md), and
saves the ledger of the ledger + barrier run to ``--state-dir`` (``loop.json``) for
``scoperouter trace`` and ``scoperouter deadletters``; ``--state-dir`` without ``--faults``
(no ledger to save) is a usage error, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoperouter.commands import common, log_path
from scoperouter.errors import ConfigError
from scoperouter.execution_log import open_log

if TYPE_CHECKING:
    from scoperouter.processor_registry.loader import LoadedConfig


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="a realistic game day through the router with the reference pipeline",
        description="Replay a synthetic NBA game day date level and routed; compare outputs and "
        "work. --config defaults to ./routes.yaml if present, else the NBA registry shipped "
        "with scoperouter.",
        parents=[common(config=True, log="write", json=True)],
    )
    p.add_argument("--seed", type=int, default=None, help="season seed (default 2025)")
    p.add_argument("--html", metavar="FILE", default=None, help="also write an HTML report")
    p.add_argument(
        "--export-events",
        metavar="FILE",
        type=Path,
        default=None,
        help="also write the day's Phase 2 events as JSON Lines (for explain and replay)",
    )
    p.add_argument(
        "--faults",
        action="store_true",
        help="also run the day with faults (10%% of runs fail, 5%% never report, late "
        "completions): ledger off, ledger on, ledger + barrier (docs/ledger.md)",
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        default=None,
        help="with --faults: save the ledger of the ledger + barrier run to DIR/loop.json "
        "(for scoperouter trace and deadletters; default ./.scoperouter)",
    )
    p.set_defaults(func=run)


def _record_demo(log: object, seed: int, routes: Path) -> None:
    """Keep in the log which demo wrote it, so ``report`` rebuilds its registry and relation
    data without ``--config`` (``routes``: null for the registry shipped with the package)."""
    from scoperouter.examples.nba.demo import PACKAGED_ROUTES
    from scoperouter.examples.nba.season import DEFAULT_GAME_DATE

    record = getattr(log, "record_demo", None)
    if record is not None:
        shipped = routes.resolve() == PACKAGED_ROUTES
        record(
            {
                "seed": seed,
                "game_date": DEFAULT_GAME_DATE.isoformat(),
                "routes": None if shipped else str(routes.resolve()),
            }
        )


def config_of_demo_log(demo: Mapping[str, Any], need_relations: bool) -> LoadedConfig | None:
    """The registry (and with ``need_relations`` the relation data) the demo that wrote a
    log ran with, from the record :func:`_record_demo` kept in it
    (:data:`~scoperouter.execution_log.api.DEMO_KEY`; ``report`` without ``--config``);
    None when its registry file is gone or the record is not one this version knows."""
    from scoperouter.examples.nba.demo import PACKAGED_ROUTES, demo_config
    from scoperouter.processor_registry.loader import LoadedConfig, load_config

    try:
        seed, day = int(demo["seed"]), date.fromisoformat(str(demo["game_date"]))
    except (KeyError, TypeError, ValueError):
        return None
    routes = Path(demo["routes"]) if demo.get("routes") else PACKAGED_ROUTES
    if not routes.is_file():
        return None
    if not need_relations:
        return load_config(routes, with_relations=False)
    registry, relations = demo_config(seed, day, routes)
    return LoadedConfig(registry, relations)


def run(args: argparse.Namespace) -> int:
    if args.state_dir is not None and not args.faults:  # a usage error, as argparse's
        why = "--state-dir: only with --faults (without it no ledger is saved)"
        print(f"scoperouter demo: error: {why}", file=sys.stderr)
        raise SystemExit(2)
    try:
        from scoperouter.examples.nba.demo import run_demo
        from scoperouter.examples.nba.season import DEFAULT_SEED
    except ImportError as exc:  # pragma: no cover - a dependency of the demo is missing
        raise ConfigError(
            f"the reference pipeline (scoperouter.examples.nba) is not importable: {exc}"
        ) from exc
    seed = DEFAULT_SEED if args.seed is None else args.seed
    routes = Path(args.config) if args.config else None
    if routes is not None and not routes.is_file():
        raise ConfigError(f"cannot read: no such file {routes}", file=str(routes))
    if args.no_log:
        result = run_demo(seed, routes=routes, faults=args.faults)
    else:
        log = open_log(log_path(args))
        try:
            result = run_demo(seed, routes=routes, log=log, faults=args.faults)
            _record_demo(log, seed, result.routes)
        finally:
            log.close()
    if result.loop is not None:
        from scoperouter.runtime.loop_store import FileLoopState

        router = result.loop.modes["ledger_barrier"].router
        assert router.engine.loop is not None
        state_dir = args.state_dir or Path(".scoperouter")
        FileLoopState(state_dir).save(router.engine.loop.snapshot())
    if args.json:
        print(json.dumps(result.to_json(), indent=None))
    else:
        print(result.text())
    if args.export_events is not None:
        try:
            args.export_events.parent.mkdir(parents=True, exist_ok=True)
            with args.export_events.open("w", encoding="utf-8") as fh:
                for msg in result.stream():
                    fh.write(json.dumps(msg, separators=(",", ":")) + "\n")
        except OSError as exc:
            print(f"error: cannot write {args.export_events}: {exc.strerror}", file=sys.stderr)
            return 1
        if not args.json:
            print(f"events: {args.export_events}")
    if args.html:
        try:
            Path(args.html).write_text(result.html(), encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.html}: {exc.strerror}", file=sys.stderr)
            return 1
        if not args.json:
            print(f"html report: {args.html}")
    return 0 if result.comparison.outputs_identical else 1
