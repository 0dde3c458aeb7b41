"""``scoperouter backfill``: a date range through the DAG in dependency order, resumable,
with progress and a cost estimate (docs/backfill.md).

Exit codes: 0 every run done (or ``--dry-run``), 1 invalid config / some runs failed or
blocked / the backfill already runs / another backfill running on the same state dir (this
process, another CLI, the daemon) overlaps it (:mod:`scoperouter.backfill.claim`: refused
before anything runs) -- with the targets executor and a shared state store (``--state
postgresql://...``, else ``$SCOPEROUTER_STATE``, else routes.yaml ``server.state``, as
``serve`` reads it), one running on any daemon replica too, and 1 when that store cannot be
asked or the claim on it is lost while the backfill runs -- 2 usage (bad selection, dates).
With that shared store, ``--completion event`` reads the runs' completions from its
completion ledger (recorded by whichever replica received them), not from ``--log``.
Warnings go to stderr before anything runs (``--dry-run`` included, whose ``--json`` also
lists them): requested dates after ``--as-of`` not in the plan (``cut_off``, and
``stale_after`` when resumed, also in ``--json``), ``ack`` over targets that only queue, and live processors reading the runs of
a shadow upstream, which the targets executor sends nothing (:mod:`scoperouter.backfill.shadow_reads`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoperouter.backfill.claim import (
    CLI_OWNER_PREFIX,
    ClaimLost,
    Overlap,
    SharedStoreUnavailable,
    claim,
)
from scoperouter.backfill.daemon_executor import shadow_processors
from scoperouter.backfill.estimate import Estimate, estimate
from scoperouter.backfill.executor import RunExecutor
from scoperouter.backfill.overlap import reach_back
from scoperouter.backfill.plan import PlanError, Request, plan_summary
from scoperouter.backfill.progress import Progress
from scoperouter.backfill.service import (
    Prepared,
    ack_warning,
    execute,
    policies,
    prepare,
    queued_targets,
    shadow_note,
)
from scoperouter.backfill.store import AlreadyRunning
from scoperouter.commands import as_of, common, config_path, fail, iso_date
from scoperouter.execution_log.reader import LogData, LogInvalidError, LogMissingError, read_log
from scoperouter.processor_registry.compiled import interpolate_env
from scoperouter.processor_registry.loader import load_config
from scoperouter.state import KEYWORD_DSN_REFUSED, is_keyword_dsn, is_postgres_url

if TYPE_CHECKING:
    from scoperouter.backfill.shared_claim import SharedClaims


def _phases(text: str) -> tuple[int, int]:
    lo, dash, hi = text.partition("-")
    try:
        if dash and not hi:  # "3-" read as phase 3 alone
            raise ValueError(text)
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid phases {text!r} (e.g. 3-6 or 4)") from None
    if a > b:
        raise argparse.ArgumentTypeError(f"invalid phases {text!r}: {a} > {b}")
    return a, b


def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "backfill",
        help="re-run a date range through the DAG in dependency order (resumable)",
        description="Plans the (processor, date) runs a range needs (with the later dates "
        "lookbacks read), runs them in dependency order with retries, and keeps the plan "
        "and progress in <state-dir>/backfills.sqlite: the same command again resumes.",
        parents=[common(config=True, log="read", as_of=True, json=True)],
    )
    p.add_argument("--start", type=iso_date, required=True, help="first date (YYYY-MM-DD)")
    p.add_argument("--end", type=iso_date, required=True, help="last date (inclusive)")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--processors", nargs="+", metavar="P", default=(), help="only these")
    sel.add_argument(
        "--from", dest="from_", nargs="+", metavar="P", default=(),
        help="these and everything downstream of them",
    )  # fmt: skip
    p.add_argument("--phases", type=_phases, default=None, metavar="A-B", help="e.g. 3-6")
    p.add_argument("--dry-run", action="store_true", help="print the plan and cost estimate")
    p.add_argument(
        "--state-dir", type=Path, default=Path(".scoperouter"),
        help="where backfills.sqlite lives (default ./.scoperouter)",
    )  # fmt: skip
    p.add_argument(
        "--state", default=None, metavar="URL",
        help="the daemon replicas' state store (postgresql://...): the backfill is also "
        "checked against the backfills running on any replica (targets executor; default "
        "$SCOPEROUTER_STATE, else routes.yaml server.state, as serve reads it)",
    )  # fmt: skip
    p.add_argument(
        "--executor", choices=("targets", "reference"), default="targets",
        help="targets: triggers through routes.yaml targets, completions from the daemon's "
        "state store; reference: the NBA reference pipeline in-process on --warehouse",
    )  # fmt: skip
    p.add_argument(
        "--completion", choices=("ack", "event"), default="ack",
        help="targets executor: 'ack' -- a delivered trigger is a finished run (synchronous "
        "endpoints such as /process-date-range); 'event' -- wait for the processor's "
        "completion event carrying the trigger id (the execution log, --log; with a "
        "postgresql:// state store, its completion ledger, which every replica writes)",
    )  # fmt: skip
    p.add_argument("--warehouse", type=Path, default=None, help="reference warehouse file")
    p.add_argument(
        "--max-attempts", type=_at_least_one, default=None, help="override per-target attempts"
    )
    p.add_argument("--max-running", type=_at_least_one, default=8, help="runs in flight at once")
    p.add_argument(
        "--rerun", action="store_true",
        help="plan the request again as a new backfill even when one is stored (finished or "
        "not): every run runs again; the stored one keeps its record (refused while it runs)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(config_path(args))
    req = Request(args.start, args.end, tuple(args.processors), tuple(args.from_), args.phases)
    log: tuple[Path, LogData | None] | None = None
    if args.dry_run:  # before planning: an unreadable log stores no plan
        got = _log(args)
        if isinstance(got, str):
            return fail(args, got)
        log = got
    try:
        prep = prepare(
            cfg.registry, cfg.relations, req, state_dir=args.state_dir,
            as_of=as_of(args, cfg.registry), rerun=args.rerun,
        )  # fmt: skip
    except PlanError as exc:
        return fail(args, str(exc), 2)
    except AlreadyRunning as exc:
        return fail(args, str(exc))
    if prep.replaced is not None:
        print(
            f"backfill {prep.backfill_id}: a rerun of backfill {prep.replaced} (its record is kept)",
            file=sys.stderr,
        )
    note = prep.finished_note()
    if note is not None:
        print(note, file=sys.stderr)
    for warning in (prep.stale_after_warning(), prep.cut_off_warning()):
        if warning is not None:
            print(warning, file=sys.stderr)
    warnings: list[str] = []  # printed on stderr; --dry-run --json lists them too
    if args.executor == "targets" and args.completion == "ack":
        queued = ack_warning(
            prep.plan, queued_targets(cfg.registry, shadow_processors(cfg.registry))
        )
        if queued is not None:
            warnings.append(queued)
    if args.executor == "targets":  # (the reference executor runs every processor)
        shadowed = shadow_note(prep, shadow_processors(cfg.registry))
        if shadowed is not None:
            warnings.append(shadowed)
    for text in warnings:
        print(text, file=sys.stderr)
    try:
        if log is not None:
            return _dry_run(args, prep, cfg, *log, warnings=warnings)
        shared = _shared_claims(args, cfg) if args.executor == "targets" else None
        if isinstance(shared, str):
            return fail(args, shared)
        made = _executor(args, cfg, shared)
        if made is None:
            if shared is not None:
                shared.close()
            return 1
        executor, close = made
        progress = _with_cut_off(Progress(prep.plan, mode="json" if args.json else "auto"), prep)

        async def go() -> bool | Overlap:
            try:
                got = claim(
                    prep.store,
                    reach_back(cfg.registry),
                    prep.plan,
                    prep.backfill_id,
                    time.time(),
                    shared,
                )
                if isinstance(got, Overlap):
                    return got
                try:
                    run = execute(
                        prep, cfg.registry, executor, max_attempts=args.max_attempts,
                        max_running=args.max_running, on_event=progress, lock=False,
                    )  # fmt: skip
                    summary = await got.run(run)
                finally:
                    got.release()
            finally:
                await close()
            return summary.ok

        try:
            ended = asyncio.run(go())
        except (AlreadyRunning, SharedStoreUnavailable, ClaimLost) as exc:
            return fail(args, str(exc))
        finally:
            if shared is not None:
                shared.close()
        if isinstance(ended, Overlap):
            return fail(args, ended.detail("run the same command again"))
        return 0 if ended else 1
    finally:
        prep.store.close()


def _with_cut_off(
    progress: Callable[[dict[str, Any]], None], prep: Prepared
) -> Callable[[dict[str, Any]], None]:
    """``progress`` with the requested dates the as-of cut off (:attr:`Prepared.cut_off`)
    in the ``start`` event: ``--json`` names them as the dry run's answer does."""
    cut = prep.cut_off_json()
    if cut is None:
        return progress

    def on_event(ev: dict[str, Any]) -> None:
        progress({**ev, "cut_off": cut} if ev["event"] == "start" else ev)

    return on_event


def _shared_claims(args: argparse.Namespace, cfg: Any) -> SharedClaims | str | None:
    """The replicas' backfill claims when the state store ``serve`` would use is shared
    (PostgreSQL): ``--state``, ``$SCOPEROUTER_STATE``, routes.yaml ``server.state``. None
    for any other store (one daemon, on its own state dir); a str: why it cannot be used."""
    server = cfg.registry.spec.server
    location = args.state or os.environ.get("SCOPEROUTER_STATE") or (server and server.state)
    if not location:
        return None
    try:
        location = interpolate_env(str(location))
    except KeyError as exc:
        return f"environment variable {exc.args[0]} of the state store location is not set"
    if is_keyword_dsn(location):  # serve refuses it: never run without the replicas' claims
        return f"the state store location {KEYWORD_DSN_REFUSED}"
    if not is_postgres_url(location):
        return None
    try:
        from scoperouter.backfill.shared_claim import SharedClaims
    except ImportError:
        return "a postgresql:// state store needs psycopg 3: pip install 'scoperouter[postgres]'"
    from scoperouter.runtime.state_open import default_replica_id

    # named in a refusal, and in GET /backfills/ID on the replicas
    return SharedClaims(location, f"{CLI_OWNER_PREFIX}{default_replica_id()}")


def _log(args: argparse.Namespace) -> tuple[Path, LogData | None] | str:
    """The execution log the estimate reads: (its path, its data -- None when there is none
    at the default path), or why it cannot be read (a missing ``--log``, a file that is not
    an execution log): an estimate from the default cost is not one from that log."""
    path: Path = args.log or args.state_dir / "execution_log.sqlite"
    try:
        return path, read_log(path)
    except LogMissingError:
        if args.log is not None:
            return f"no execution log at {path} (--log)"
        return path, None
    except LogInvalidError as exc:
        return str(exc)


def _dry_run(
    args: argparse.Namespace,
    prep: Prepared,
    cfg: Any,
    log_path: Path,
    log: LogData | None,
    *,
    warnings: list[str] | None = None,
) -> int:
    """Print the plan and its estimate (``--json``: with the ``warnings`` printed on
    stderr, their ``warning: `` prefix off)."""
    stored = prep.store.runs(prep.backfill_id)
    targets = args.executor == "targets"
    est = estimate(
        prep.plan,
        cfg.registry,
        log,
        cfg.relations,
        policies=policies(cfg.registry, args.max_attempts),
        max_running=args.max_running,
        done={r.index for r in stored if r.state == "done"},
        # what the run's executor skips: the targets executor marks a shadow processor's
        # runs done and sends nothing (_executor) -- a run first attempted before keeps
        # that attempt's mode; the reference executor runs them all
        shadow=shadow_processors(cfg.registry) if targets else frozenset(),
        modes={r.index: r.mode for r in stored if r.mode is not None} if targets else None,
    )
    summ = plan_summary(prep.plan)
    if args.json:
        out = {"backfill_id": prep.backfill_id, "resumed": prep.resumed,
               "as_of": prep.plan.as_of.isoformat(), "plan": summ, "estimate": est.to_json(),
               "log": None if log is None else str(log_path)}  # fmt: skip
        if prep.replaced is not None:
            out["replaces"] = prep.replaced
        if prep.stale_after is not None:
            out["stale_after"] = prep.stale_after_json()
        if prep.cut_off is not None:
            out["cut_off"] = prep.cut_off_json()
        if warnings:
            out["warnings"] = [w.removeprefix("warning: ") for w in warnings]
        print(json.dumps(out))
        return 0
    print(_render(prep, summ, est, None if log is not None else log_path))
    return 0


def _render(prep: Prepared, summ: dict[str, Any], est: Estimate, no_log: Path | None = None) -> str:
    r = prep.plan.request
    lines = [
        f"backfill {prep.backfill_id} ({'stored, would resume' if prep.resumed else 'new'}): "
        f"{r.start} .. {r.end}, as of {prep.plan.as_of}",
        f"{summ['runs']} runs ({summ['lookback_runs']} on later dates lookbacks read), "
        f"{summ['edges']} dependency intervals"
        + (f"; {est.done} stored done, not run again: {est.runs} to run" if est.done else ""),
        "",
        f"{'processor':<30} {'ph':>2} {'runs':>5} {'rows':>9} {'hours':>8}   "
        f"{'range-only runs':>15} {'rows':>9} {'hours':>8}  cost model",
    ]
    for p in est.processors:
        if p.shadow_runs:  # none of its runs is run (runs 0)
            lines.append(
                f"{p.processor:<30} {p.phase:>2} {0:>5} {0:>9} {0.0:>8.2f}   "
                f"{0:>15} {0:>9} {0.0:>8.2f}  shadow (not run)"
            )
            continue
        lines.append(
            f"{p.processor:<30} {p.phase:>2} {p.runs:>5} {p.rows:>9} {p.hours:>8.2f}   "
            f"{p.range_runs:>15} {p.range_rows:>9} {p.range_hours:>8.2f}  {p.cost.source}"
            f" ({p.rows_source})"
        )
    tot = est.to_json()
    ro = tot["range_only"]
    lines.append(
        f"{'total':<30} {'':>2} {est.runs:>5} {est.rows:>9} {est.hours:>8.2f}   "
        f"{ro['runs']:>15} {ro['entity_rows']:>9} {ro['hours']:>8.2f}"
    )
    lines.append(
        f"wall clock: about {est.wall_hours:.2f} h with the targets' concurrency and the "
        "plan's edges (retries aside)"
    )
    if est.shadow_runs:
        names = est.shadow_processors
        lines.append(
            f"{len(names)} shadow processor{'s' if len(names) != 1 else ''} not run "
            f"({', '.join(names)}): mode shadow in routes.yaml, their {est.shadow_runs} runs "
            "are marked done at once and sent nothing (production still runs them); not in "
            "the runs, rows, hours or wall clock"
        )
    unknown = [p.processor for p in est.processors if p.rows_unknown_runs]
    if unknown:
        lines.append(
            f"{est.rows_unknown_runs} runs with unknown rows ({', '.join(unknown)}): no "
            "completions in the execution log and no entity universe; their rows are not "
            "counted and their hours are the per-run overhead only: rows, hours and wall "
            "clock are a lower bound"
        )
    if no_log is not None:
        lines.append(
            f"no execution log at {no_log}: rows from the relation data, hours from the "
            "default cost (--log to read one)"
        )
    return "\n".join(lines)


def _executor(
    args: argparse.Namespace, cfg: Any, shared: SharedClaims | None = None
) -> tuple[RunExecutor, Callable[[], Awaitable[None]]] | None:
    """The executor and what closes it (sinks, connections), or None (error printed).
    ``shared``: the replicas' store, whose completion ledger answers completion "event"
    (the replicas receive the completions); without it, the execution log (``--log``)."""
    if args.executor == "reference":
        from scoperouter.examples.nba.backfill_executor import ReferenceExecutor, open_warehouse

        if args.warehouse is None or not args.warehouse.exists():
            fail(args, "--executor reference needs an existing --warehouse file")
            return None
        wh = open_warehouse(args.warehouse)

        async def close_wh() -> None:
            wh.close()

        return ReferenceExecutor(wh), close_wh
    from scoperouter.backfill.daemon_executor import (
        CompletionLookup,
        TargetExecutor,
        log_completions,
    )
    from scoperouter.runtime.sinks import SinkFactory

    factory = SinkFactory(args.state_dir)
    sinks = factory.build_all(cfg.registry)
    lookup: CompletionLookup = (
        shared.completion
        if shared is not None
        else log_completions(args.log or args.state_dir / "execution_log.sqlite")
    )
    ex = TargetExecutor(
        sinks,
        lookup,
        date_field=cfg.registry.date_field,
        ack_is_completion=args.completion == "ack",
        shadow=shadow_processors(cfg.registry),
    )
    return ex, factory.close
