"""``scoperouter replay EVENTS.jsonl|- [--config C] [--as-of DATE] [--dry-run] [--json] [--outbox FILE] [--log PATH | --no-log]``.

A stream of events (one JSON object per line) through the planner and the coalescing
windows on a **virtual clock**: the clock is the largest ``produced_at`` (or ``timestamp``;
one that does not read counts as absent, with a WARNING) seen so far, in file order (events are not re-sorted; an event without a time happens at
the current clock; events before the first timed one happen at the first time in the
file, or now when none has a time). Before each event, every window whose deadline has
passed fires at its deadline; at the end of the stream the clock runs on until every
window has fired. Each trigger is printed with ``fired_at`` (``--json``: one trigger per
line, SPEC section 3).

Lookbacks stop at the as-of date: ``--as-of``, ``$SCOPEROUTER_AS_OF`` or ``routes.yaml``'s
``server.as_of`` (``serve``'s precedence) when one is set, else each event's virtual date
(the UTC date of the clock when it is routed), as ``serve`` without ``--as-of`` stops them
at the date of its own clock. So a replay of last month's events reaches the dates they
reached then, not every date up to today. A stream with no time at all (no
``produced_at``/``timestamp``) runs on a clock that starts now: it is routed as of today
(UTC), its triggers fire (and are logged) from now on.

Without ``--dry-run`` the triggers are also appended to an outbox file (``--outbox``,
default ``./.scoperouter/replay-outbox.jsonl``) and the replay is appended to the
execution log (``--log``, default ``./.scoperouter/execution_log.sqlite``; ``--no-log``
skips it), for ``scoperouter report``: every event and its decisions at the virtual
time they were planned, and every fired trigger as a dispatch with status ``replayed``
at its ``fired_at`` (a run for the report; no completions). With ``--dry-run`` nothing
is written: no outbox, no log.

Each line is an event, or a Pub/Sub push body as ``serve``'s ``/events`` takes it (as
``explain`` reads one): the event it carries, named by its ``messageId`` when it has no
``event_id``; a push message ``serve`` would dead-letter (no data, bad base64) is a
rejected line. A line that is not a valid event is reported on stderr with its line number
and reason and counted; so is an event the planner raises on (``planner_error``, e.g. a
date whose lookahead runs past 9999-12-31: ``serve`` dead-letters it), which is never logged
or windowed. With ``--json`` each rejected line is also printed on stdout, before the
triggers, as ``{"error": "invalid_event", "reason", "detail", "event_id", "line"}``; an
unreadable file is ``invalid_config`` (README, "``--json`` errors"). The replay goes on,
and exits 1 at the end if any line was rejected. An event whose ``event_id`` was already
routed within ``server.dedup_horizon`` (default 24 h) of the virtual clock is a duplicate
(a Pub/Sub redelivery) and is ignored, as ``serve`` ignores it: counted, never planned,
logged or windowed. A time the clock cannot run at (before
0001-01-01 UTC, or so near 9999-12-31 that a window would fire past it) is a rejected line
(``invalid_field``).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from scoperouter.commands import (
    common,
    config_path,
    configured_as_of,
    invalid_event_json,
    log_path,
)
from scoperouter.commands.explain import read_input, unwrap_push
from scoperouter.errors import ConfigError, EventError
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.messages.body_ids import accepted_as
from scoperouter.messages.models import Event, Trigger
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.engine import Fired, RoutingEngine
from scoperouter.router.seen_ids import SeenIds
from scoperouter.runtime.loop_runtime import loop_not_modelled

DEFAULT_OUTBOX = Path(".scoperouter") / "replay-outbox.jsonl"
_FIRST = datetime(1, 1, 1, tzinfo=UTC)
_LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
REPLAYED_STATUS = "replayed"
"""``dispatch_status`` of a replayed trigger in the execution log (counted as a run)."""


class Rejected(NamedTuple):
    """A rejected line: its number, the reason (an EventError's, or ``planner_error``)."""

    line: int
    reason: str
    detail: str
    event_id: str | None = None

    def text(self) -> str:
        """``line N: rejected: REASON: DETAIL[ (event ID)]``, for stderr."""
        where = f" (event {self.event_id})" if self.event_id else ""
        return f"line {self.line}: rejected: {self.reason}: {self.detail}{where}"

    def json(self) -> str:
        """The ``--json`` error of an invalid event, with its ``"line"``, for stdout."""
        return invalid_event_json(self.reason, self.detail, self.event_id, line=self.line)


@dataclass
class ReplayResult:
    events: int
    triggers: list[Trigger]
    duplicates: int = 0  # events ignored as already routed (same event_id, within the horizon)
    rejections: list[Rejected] = field(default_factory=list)  # in line order

    @property
    def rejected(self) -> int:
        return len(self.rejections)


def replay_events(
    registry: CompiledRegistry,
    relations: RelationStore,
    lines: list[bytes],
    as_of: date | None,
    *,
    errors: TextIO | None = None,
    log: ExecutionLog | None = None,
) -> ReplayResult:
    """Pure-ish core of ``replay`` (no file output): returns every trigger with ``fired_at``.

    ``as_of`` None: each event is routed as of the UTC date of the virtual clock (which
    starts now when no event carries a time: today's date). With ``log``, each event's
    decisions are recorded at the virtual clock, with that as-of, and each fired trigger as
    a dispatch (status :data:`REPLAYED_STATUS`) at its ``fired_at``. Each rejected line is
    printed to ``errors`` when it is met."""
    parsed: list[tuple[int, Event]] = []
    rejections: list[Rejected] = []

    def reject(r: Rejected) -> None:
        rejections.append(r)
        if errors is not None:
            print(r.text(), file=errors)

    clock_range = _clock_range(registry)
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data, message_id = unwrap_push(line)  # serve's /events takes push bodies too
            event = parse_event_bytes(data, registry, message_id=message_id)
            _check_time(event, clock_range)
            parsed.append((n, event))
        except EventError as exc:
            reject(Rejected(n, exc.reason, exc.detail, exc.event_id))
    first_at = next((e.produced_at for _, e in parsed if e.produced_at is not None), None)
    # no time at all: the clock starts now, so the stream is routed (and stamped) as of today
    first = (first_at or datetime.now(UTC)).timestamp()
    engine = RoutingEngine(registry)
    fired: list[Trigger] = []

    def emit(triggers: list[Fired]) -> None:
        for f in triggers:
            t = f.stamped()
            fired.append(t)
            if log is not None:
                log.record_dispatch(
                    t, status=REPLAYED_STATUS, attempts=1, latency_ms=None, dispatched_at=f.fired_at
                )

    clock = first
    seen = SeenIds.of(registry)  # serve's seen ids, on the virtual clock
    duplicates = 0
    unplanned = 0  # events the planner raised on: rejected, not counted as events
    for n, event in parsed:
        if event.produced_at is not None:
            clock = max(clock, event.produced_at.timestamp())
        event = accepted_as(event, clock)  # an id-less message's send: an event of its own
        if seen.duplicate(event.event_id, clock):
            duplicates += 1
            emit(engine.tick(clock))
            continue
        at = datetime.fromtimestamp(clock, tz=UTC)
        day = as_of if as_of is not None else at.date()  # serve's default: its clock's date
        try:
            decisions = engine.plan(event, relations, day)
        except Exception as exc:  # a planner bug: serve dead-letters it (planner_error)
            unplanned += 1
            seen.forget(event.event_id)  # not routed: a redelivery is planned again
            reject(Rejected(n, "planner_error", f"{type(exc).__name__}: {exc}", event.event_id))
            emit(engine.tick(clock))  # as for a duplicate: the windows due now fire
            continue
        now_fired = engine.accept(event, decisions, clock)  # = engine.receive
        if log is not None:
            log.record_decisions(
                event, decisions, at, registry=registry, relations=relations, as_of=day
            )
        emit(now_fired)
    emit(engine.drain())
    if log is not None:
        log.flush()
    return ReplayResult(
        events=len(parsed) - unplanned,
        triggers=fired,
        duplicates=duplicates,
        rejections=sorted(rejections),
    )


def _clock_range(registry: CompiledRegistry) -> tuple[float, float]:
    """The times (epoch seconds) an event may carry: the virtual clock, and every window
    deadline after it (up to the longest ``quiet``/``max_wait`` wait), stay datetimes."""
    wait = max((min(p.quiet_s, p.max_wait_s) for p in registry.processors.values()), default=0)
    return _FIRST.timestamp(), _LAST.timestamp() - wait


def _check_time(event: Event, clock_range: tuple[float, float]) -> None:
    """EventError (``invalid_field``) when ``event``'s time is out of ``clock_range``."""
    if event.produced_at is None:
        return
    lo, hi = clock_range
    if not lo <= event.produced_at.timestamp() <= hi:
        raise EventError(
            "invalid_field",
            f"produced_at {event.produced_at.isoformat()} is outside the replay clock's "
            f"range {_iso(lo)}..{_iso(hi)} (its windows fire up to {_LAST.timestamp() - hi:g} s "
            "later, before 9999-12-31T23:59:59Z)",
            event.event_id,
        )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")


def format_trigger(t: Trigger, plurals: Mapping[str, str] | None = None) -> str:
    when = t.fired_at.strftime("%Y-%m-%dT%H:%M:%SZ") if t.fired_at else "-"
    if t.scope == "entities" and t.entity_ids is not None:
        ids = ",".join(t.entity_ids[:10]) + (",..." if len(t.entity_ids) > 10 else "")
        kind = (plurals or {}).get(t.entity_type or "", f"{t.entity_type}s")
        what = f"{len(t.entity_ids)} {kind} [{ids}]"
    else:
        what = "full date"
    return (
        f"{when}  {t.processor}  {t.game_date}  {what}  reason={t.reason}"
        f"  caused_by={len(t.caused_by) + t.caused_by_more}{'  CRITICAL' if t.priority == 'critical' else ''}"
    )


def run(args: argparse.Namespace) -> int:
    data = read_input(args.events)
    cfg = load_config(config_path(args))
    if (warning := loop_not_modelled(cfg.registry, "replay")) is not None:
        print(f"warning: {warning}", file=sys.stderr)
    fixed = configured_as_of(args, cfg.registry)  # None: each event's virtual date
    where_log = log_path(args)
    log: ExecutionLog | None = None
    if not args.dry_run and not args.no_log:
        from scoperouter.execution_log import ExecutionLogError, open_log

        try:
            log = open_log(where_log)
        except (OSError, ExecutionLogError, sqlite3.DatabaseError) as exc:
            raise ConfigError(f"cannot open execution log {where_log}: {exc}") from exc
    try:
        result = replay_events(
            cfg.registry, cfg.relations, data.splitlines(), fixed, errors=sys.stderr, log=log
        )
    finally:
        if log is not None:
            log.close()
    if args.json:
        for r in result.rejections:
            print(r.json())
    out_lines = [json.dumps(t.wire(), separators=(",", ":")) for t in result.triggers]
    for t, js in zip(result.triggers, out_lines, strict=True):
        print(js if args.json else format_trigger(t, cfg.registry.plurals))
    where = "dry run, nothing written"
    if not args.dry_run:
        path = Path(args.outbox)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                for js in out_lines:
                    fh.write(js + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write outbox {path}: {exc.strerror}") from exc
        where = f"appended to {path}" + ("" if log is None else f", logged to {where_log}")
    print(
        f"replay: {result.events} events, {result.rejected} rejected, "
        f"{result.duplicates} duplicates, {len(result.triggers)} triggers ({where})",
        file=sys.stderr,
    )
    return 1 if result.rejected else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help="a JSONL stream through planner and windows on a virtual clock",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common(config=True, log="write", as_of=True, json=True)],
    )
    p.add_argument("events", metavar="EVENTS", help="JSONL file of events, or - for stdin")
    p.add_argument("--dry-run", action="store_true", help="print the triggers, write nothing")
    p.add_argument(
        "--outbox",
        default=str(DEFAULT_OUTBOX),
        help=f"outbox JSONL to append to (default ./{DEFAULT_OUTBOX})",
    )
    p.set_defaults(func=run)
