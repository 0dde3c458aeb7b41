"""``scoperouter explain EVENT|- [--config C] [--as-of DATE] [--json] [--cascade]``.

One event (a JSON file, or ``-`` for stdin; a Pub/Sub push envelope is unwrapped, its
messageId naming an event without an id, as ``serve``'s ``/events`` does) through the planner: a decision for every
processor of the registry, sorted by processor name. ``--json`` prints
``{"event": {...normalised...}, "decisions": [...]}`` (SPEC section 4). ``--as-of``
(default: today) caps lookback dates. ``--cascade`` also follows ``publishes`` through the
DAG (:mod:`scoperouter.router.cascade`): every processor the update reaches, hop by hop,
with its scope, reason and what reached it; with ``--json`` under a ``"cascade"`` key
(``{"as_of", "hops": [{"hop", "sources", "decisions": [... "hop", "via"]}], "reached",
"not_reached"}``). Exit 0, or 1 (one line on stderr) for an unreadable file, an invalid
config or event, or an event the planner raises on (``planner_error``: ``serve``
dead-letters it); with ``--json`` the error is also printed on stdout as JSON (README,
"``--json`` errors").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import date
from typing import Any

from scoperouter.commands import as_of, common, config_path, invalid_event_json
from scoperouter.errors import ConfigError, ConfigIssue, EventError
from scoperouter.messages.normalize import event_to_json, loads_event_json, parse_event_bytes
from scoperouter.messages.push import (
    PROBLEM_TEXT,
    PushEnvelopeError,
    is_push_envelope,
    message_key,
    parse_push_envelope,
)
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.cascade import Wave, cascade
from scoperouter.router.decisions import Decision
from scoperouter.router.event_range import has_other_range_dates
from scoperouter.router.planner import plan


def read_input(path: str) -> bytes:
    """Bytes of a file, or of stdin for ``-``; a ConfigError (``io``, naming the file) when
    unreadable -- main() prints it, as JSON too with ``--json``."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(f"cannot read: {exc.strerror}", file=path, code="io")]
        ) from None


def unwrap_push(data: bytes) -> tuple[bytes, str | None]:
    """The event a Pub/Sub push envelope carries, with its messageId qualified by the
    envelope's subscription as ``serve`` reads it (``push.message_key``; ``serve``'s
    ``/events`` takes both forms, so ``explain`` does); other bytes as they are. A push
    message ``serve`` would dead-letter (no data, bad base64) raises EventError."""
    if not data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{") or (
        b'"message"' not in data
    ):
        return data, None  # not an envelope: the event parser says what is wrong
    try:
        obj = loads_event_json(data)  # as serve reads a body (a BOM ignored)
    except EventError:
        return data, None
    if not isinstance(obj, dict) or not is_push_envelope(obj):
        return data, None
    try:
        push = parse_push_envelope(obj)
    except PushEnvelopeError as exc:
        raise EventError("invalid_envelope", str(exc)) from None
    if push.problem is not None or push.data is None:
        problem = PROBLEM_TEXT[push.problem or "no_data"]
        raise EventError("invalid_envelope", problem, push.message_id)
    return push.data, message_key(push.message_id, obj.get("subscription"))


def format_dates(dates: tuple[date, ...]) -> str:
    if not dates:
        return "-"
    if len(dates) == 1:
        return dates[0].isoformat()
    return f"{dates[0].isoformat()}..{dates[-1].isoformat()} ({len(dates)} dates)"


def format_table(decisions: tuple[Decision, ...], plurals: Mapping[str, str] | None = None) -> str:
    """The readable table: processor, action, scope, count, dates, reason. An entity scope
    reads as the entity type's plural (the registry's ``plurals``, else name + s)."""
    rows: list[tuple[str, ...]] = [("PROCESSOR", "ACTION", "SCOPE", "COUNT", "DATES", "REASON")]
    for d in decisions:
        rows.append((d.processor, d.action, *_scope(d, plurals), format_dates(d.dates), d.reason))
    lines = _columns(rows)
    for d in decisions:
        if d.entity_ids:
            shown = ", ".join(d.entity_ids[:20]) + (" ..." if len(d.entity_ids) > 20 else "")
            lines.append(f"  {d.processor}: {shown}")
    return "\n".join(lines)


def _scope(d: Decision, plurals: Mapping[str, str] | None) -> tuple[str, str]:
    """(scope, count) columns: ``players``/``3``, ``date``/``all`` or ``-``/``-``."""
    if d.scope == "entities" and d.entity_ids is not None:
        return (plurals or {}).get(d.entity_type or "", f"{d.entity_type}s"), str(len(d.entity_ids))
    return d.scope or "-", "all" if d.scope == "date" else "-"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_wave(wave: Wave, plurals: Mapping[str, str] | None = None) -> str:
    """The cascade: one row per run, hop by hop, with what reached it; then the ids."""
    n = len(wave.reached())
    head = (
        f"cascade (dry run: every run assumed to change every id it processes): "
        f"{n} of {len(wave.processors)} processors reached in {len(wave.hops)} "
        f"hop{'s' * (len(wave.hops) != 1)}"
    )
    rows: list[tuple[str, ...]] = [("HOP", "PROCESSOR", "SCOPE", "COUNT", "DATES", "REASON", "VIA")]
    for step in wave.steps():
        d = step.decision
        rows.append(
            (
                str(step.hop),
                d.processor,
                *_scope(d, plurals),
                format_dates(d.dates),
                d.reason,
                ", ".join(step.via),
            )
        )
    lines = [head, *_columns(rows)]
    for step in wave.steps():
        ids = step.decision.entity_ids
        if ids:
            shown = ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else "")
            lines.append(f"  hop {step.hop} {step.decision.processor}: {shown}")
    missed = wave.not_reached()
    lines.append(f"not reached: {', '.join(missed) if missed else '-'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    data = read_input(args.event)
    cfg = load_config(config_path(args))
    data, message_id = unwrap_push(data)  # EventError -> main() prints, exit 1
    event = parse_event_bytes(data, cfg.registry, message_id=message_id)
    today = as_of(args, cfg.registry)
    try:
        decisions = plan(cfg.registry, cfg.relations, event, today)
        wave = cascade(cfg.registry, cfg.relations, event, today) if args.cascade else None
    except Exception as exc:  # a planner bug: serve dead-letters the event (planner_error)
        detail = f"{type(exc).__name__}: {exc}"
        print(
            f"error: cannot plan event {event.event_id}: planner_error: {detail}", file=sys.stderr
        )
        if args.json:
            print(invalid_event_json("planner_error", detail, event.event_id))
        return 1
    if args.json:
        out: dict[str, Any] = {
            "event": event_to_json(event, cfg.registry.date_field),
            "decisions": [d.to_json() for d in decisions],
        }
        if wave is not None:
            out["cascade"] = wave.to_json()
        print(json.dumps(out, indent=2))
        return 0
    runs = sum(1 for d in decisions if d.action == "run")
    target = (
        event.game_date.isoformat()
        if event.game_date
        else (f"{event.start_date}..{event.end_date}")
    )
    if event.game_date and has_other_range_dates(event):  # the range runs too
        target += f" (range {event.start_date}..{event.end_date})"
    print(
        f"event {event.event_id} ({event.shape}): {event.source} {target} "
        f"status={event.status} -> {runs} of {len(decisions)} processors run (as of {today})"
    )
    print(format_table(decisions, cfg.registry.plurals))
    if wave is not None:
        print()
        print(format_wave(wave, cfg.registry.plurals))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain",
        help="one event -> a decision for every processor (--cascade: the whole wave)",
        description="Route one event through the planner and print a decision per processor. "
        "--cascade follows publishes through the DAG: every processor the update reaches, "
        "hop by hop (a dry run).",
        parents=[common(config=True, as_of=True, json=True)],
    )
    p.add_argument(
        "event",
        metavar="EVENT",
        help="event JSON file (or a Pub/Sub push envelope), or - for stdin",
    )
    p.add_argument(
        "--cascade",
        action="store_true",
        help="also follow each run's completion through the DAG, hop by hop (dry run)",
    )
    p.set_defaults(func=run)
