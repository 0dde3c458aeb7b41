"""``report --what-if``: re-plan the logged events under other settings and compare.

The log keeps every normalised event with the time it was decided and the planner's
as-of date, so the events can be fed again through the routing engine
(:class:`scoperouter.router.engine.RoutingEngine`) on a virtual clock (the logged ``decided_at``). Under the log's own settings this
reproduces the logged decisions exactly (:func:`verify_decisions`).
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.execution_log.reader import (
    EventKey,
    EventRecord,
    LogData,
    decision_event_keys,
    event_key,
)
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import (
    DATE_GRANULARITY,
    CompiledRegistry,
    compile_registry,
)
from scoperouter.processor_registry.models import DURATION_RE, RoutesSpec, parse_duration
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import RoutingEngine
from scoperouter.runtime.loop_runtime import loop_not_modelled

WHAT_IF_KEYS = ("max_entities", "window.quiet", "window.max_wait")


@dataclass
class Replay:
    """What the router would have done: decisions per event (by :data:`EventKey`: two
    events sharing an id on different dates are two) and fired triggers."""

    decisions: dict[EventKey, tuple[Decision, ...]]
    triggers: list[tuple[Trigger, float]]  # (trigger, fired at)
    latencies_s: list[float] = field(default_factory=list)  # event decided -> trigger fired


def replay(
    registry: CompiledRegistry, relations: RelationStore, events: Sequence[EventRecord]
) -> Replay:
    """Feed the events through the planner and the windows on the logged clock. A trigger's
    latency is from each event it names (``caused_by``: ids) decided -- of that id the last
    decided at or before the trigger fired."""
    engine = RoutingEngine(registry)
    decided: dict[EventKey, tuple[Decision, ...]] = {}
    at: dict[str, list[float]] = defaultdict(list)  # event id -> decided at, ascending
    fired: list[tuple[Trigger, float]] = []
    for rec in events:
        now = rec.decided_at.timestamp()
        ds, now_fired = engine.receive(rec.event, relations, rec.as_of, now)
        decided[event_key(rec)] = ds
        at[rec.event.event_id].append(now)
        fired.extend((f.trigger, f.at) for f in now_fired)
    fired.extend((f.trigger, f.at) for f in engine.drain())
    lat = []
    for t, when in fired:
        for e in t.caused_by:
            times = at.get(e, [])
            i = bisect.bisect_right(times, when)
            if i:
                lat.append(when - times[i - 1])
    return Replay(decided, fired, lat)


def _work(
    registry: CompiledRegistry, relations: RelationStore, t: Trigger, date_rows: Mapping[str, float]
) -> float | None:
    """Entity rows a trigger processes: its ids, the universe of a full date, or (date
    granularity, unknown universe) the average rows the processor reported per run."""
    if t.scope == "entities":
        return len(t.entity_ids or ())
    p = registry.processors.get(t.processor)
    u = (
        relations.universe(p.granularity, t.game_date)
        if p is not None and p.granularity != DATE_GRANULARITY
        else None
    )
    return float(u) if u is not None else date_rows.get(t.processor)


def date_run_rows(data: LogData) -> dict[str, float]:
    """Average records processed per reported run, per processor (from completions)."""
    acc: dict[str, list[int]] = defaultdict(list)
    for c in data.completions:
        acc[c.processor].append(c.records_processed)
    return {k: sum(v) / len(v) for k, v in acc.items() if v}


def summarize(
    registry: CompiledRegistry,
    relations: RelationStore,
    r: Replay,
    date_rows: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Work and latency figures of a replay, overall and per processor. ``unsized_runs``:
    the runs of unknown size (:func:`_work` is None), which ``entity_rows`` leaves out.
    Latency ``p95`` is the nearest rank: the ceil(0.95 n)-th smallest of the n latencies."""
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"runs": 0, "entity_runs": 0, "date_runs": 0, "entity_rows": 0, "unsized_runs": 0}
    )
    rows = 0.0
    unsized = 0
    for t, _when in r.triggers:
        p = per[t.processor]
        p["runs"] += 1
        p["entity_runs" if t.scope == "entities" else "date_runs"] += 1
        w = _work(registry, relations, t, date_rows or {})
        if w is not None:
            p["entity_rows"] = round(p["entity_rows"] + w, 1)
            rows += w
        else:
            p["unsized_runs"] += 1
            unsized += 1
    lat = sorted(r.latencies_s)
    return {
        "runs": len(r.triggers),
        "entity_runs": sum(1 for t, _ in r.triggers if t.scope == "entities"),
        "date_runs": sum(1 for t, _ in r.triggers if t.scope == "date"),
        "entity_rows": round(rows, 1),
        "unsized_runs": unsized,
        "latency_s": {
            "mean": round(statistics.fmean(lat), 3) if lat else None,
            "p95": round(lat[-(-95 * len(lat) // 100) - 1], 3) if lat else None,  # nearest rank
            "max": round(lat[-1], 3) if lat else None,
        },
        "processors": dict(sorted(per.items())),
    }


# ---------------------------------------------------------------------------- settings
def parse_what_if(items: Sequence[str]) -> dict[str, str]:
    """``["max_entities=50", "window.quiet=60s"]`` -> a dict; ConfigError on bad items."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(
                [ConfigIssue(f"--what-if expects KEY=VALUE, got {item!r}", file="<what-if>")]
            )
        out[key] = value
    return out


def apply_what_if(spec: RoutesSpec, changes: Mapping[str, str]) -> RoutesSpec:
    """``routes.yaml`` with the changes applied. Keys: ``max_entities``, ``window.quiet``,
    ``window.max_wait`` (defaults *and* every processor), or the same prefixed by a
    processor name (``player_game_summary.max_entities``)."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    procs: dict[str, Any] = data["processors"]
    for key, value in changes.items():
        parts = key.split(".")
        if parts[0] in procs:
            targets = [procs[parts[0]]]
            setting = ".".join(parts[1:])
            defaults_too = False
        else:
            targets = list(procs.values())
            setting = key
            defaults_too = True
        if setting not in WHAT_IF_KEYS:
            raise ConfigError(
                [
                    ConfigIssue(
                        f"unknown --what-if key {key!r}: expected one of {', '.join(WHAT_IF_KEYS)}"
                        " (optionally prefixed by a processor name)",
                        file="<what-if>",
                    )
                ]
            )
        if setting == "max_entities":
            try:
                n = int(value)
            except ValueError:
                raise ConfigError(
                    [ConfigIssue(f"{key}: expected an integer, got {value!r}", file="<what-if>")]
                ) from None
            for p in targets:
                p["max_entities"] = n
            if defaults_too:
                data["defaults"]["max_entities"] = n
        else:
            if not DURATION_RE.match(value):
                raise ConfigError(
                    [
                        ConfigIssue(
                            f"{key}: expected a duration like 30s, got {value!r}", file="<what-if>"
                        )
                    ]
                )
            field_ = setting.split(".", 1)[1]
            blocks = [p.setdefault("window", dict(data["defaults"]["window"])) for p in targets]
            if defaults_too:
                blocks.append(data["defaults"]["window"])
            for w in blocks:
                w[field_] = value
                # keep max_wait >= quiet: the changed bound wins, the other follows
                q, m = parse_duration(w["quiet"]), parse_duration(w["max_wait"])
                if q > m:
                    w["max_wait" if field_ == "quiet" else "quiet"] = value
    try:
        return RoutesSpec.model_validate(data)
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise ConfigError(
            [ConfigIssue(f"--what-if makes an invalid registry: {msg}", file="<what-if>")]
        ) from exc


def what_if(
    registry: CompiledRegistry, relations: RelationStore, data: LogData, changes: Mapping[str, str]
) -> dict[str, Any]:
    """Side by side: the logged events re-planned under the current and the changed settings."""
    spec2 = apply_what_if(registry.spec, changes)
    reg2 = compile_registry(spec2, file=registry.file, base_dir=registry.base_dir)
    base = replay(registry, relations, data.events)
    alt = replay(reg2, relations, data.events)
    rows = date_run_rows(data)
    sb, sa = summarize(registry, relations, base, rows), summarize(reg2, relations, alt, rows)
    logged = logged_decisions(data)
    mism = verify_decisions(data, base, logged)
    # with --since, an event dated before it has no row here, but its lookback runs on or
    # after it do: those runs are in the report, not in either replay -- said, not hidden
    left_out = sorted(logged.keys() - base.decisions.keys())
    left_runs = sum(  # a run decision's rows: one per date (the report's runs)
        len(d["dates"]) or 1
        for ev in left_out
        for d in logged[ev].values()
        if d.get("action") == "run"
    )
    return {
        "changes": dict(changes),
        "events": len(data.events),
        "current": sb,
        "what_if": sa,
        "delta": {
            "runs": sa["runs"] - sb["runs"],
            "entity_rows": round(sa["entity_rows"] - sb["entity_rows"], 1),
            "latency_mean_s": (
                round(sa["latency_s"]["mean"] - sb["latency_s"]["mean"], 3)
                if sa["latency_s"]["mean"] is not None and sb["latency_s"]["mean"] is not None
                else None
            ),
        },
        "current_matches_log": {"mismatches": len(mism), "examples": mism[:5]},
        # logged events before --since whose runs fall on or after it: not re-planned (an
        # event is dated as the log's events table and every --since cut date it: a date
        # range by its start, so a range starting before --since is one even if it reaches it)
        "not_replanned": {"events": len(left_out), "runs": left_runs},
        # what serve would do differently: the closed loop is not replayed (None: it is off)
        "loop_not_modelled": loop_not_modelled(registry, "report --what-if"),
    }


# ---------------------------------------------------------------------------- verification
def logged_decisions(data: LogData) -> dict[EventKey, dict[str, dict[str, Any]]]:
    """The logged decisions as ``explain --json`` dicts: event (:func:`.reader.decision_event_keys`)
    -> processor -> decision."""
    acc: dict[EventKey, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row, key in zip(data.decisions, decision_event_keys(data), strict=True):
        if key is None:
            continue
        cur = acc[key].get(row.processor)
        if cur is None:
            cur = {
                "processor": row.processor,
                "action": row.action,
                "scope": row.scope,
                "entity_type": row.entity_type if row.scope == "entities" else None,
                "entity_ids": list(row.entity_ids) if row.entity_ids is not None else None,
                "dates": [],
                "reason": row.reason,
            }
            acc[key][row.processor] = cur
        if row.action == "run" and row.game_date is not None:
            cur["dates"].append(row.game_date.isoformat())
    for per in acc.values():
        for d in per.values():
            d["dates"] = sorted(set(d["dates"]))
    return acc


def verify_decisions(
    data: LogData, r: Replay, logged: dict[EventKey, dict[str, dict[str, Any]]] | None = None
) -> list[str]:
    """Differences between the logged decisions (``logged``: :func:`logged_decisions` of
    ``data``, when the caller has it) and a replay's (empty: identical). Skips, counted on
    the event row (no rows of their own), are compared as counts per reason; a logged
    processor the replay decided nothing for (not in the registry any more) differs."""
    logged = logged_decisions(data) if logged is None else logged
    counted = {event_key(e): dict(e.skips) for e in data.events}
    out: list[str] = []
    for key, ds in r.decisions.items():
        got = logged.get(key, {})
        ev = _name(key)
        agg: dict[str, int] = {}
        for d in ds:
            want = d.to_json()
            have = got.get(d.processor)
            if have is None and d.action == "skip":  # counted on the event row
                agg[d.reason] = agg.get(d.reason, 0) + 1
                continue
            if have != want:
                out.append(f"event {ev} / {d.processor}: logged {have} != replanned {want}")
        planned = {d.processor for d in ds}
        for name in sorted(got.keys() - planned):  # e.g. removed from routes.yaml since
            out.append(f"event {ev} / {name}: logged {got[name]} != replanned nothing")
        if agg != counted.get(key, {}):
            out.append(f"event {ev}: logged skips {counted.get(key, {})} != replanned {agg}")
    if data.since is None:  # else: an event before ``since`` may have later decisions
        for key in sorted(logged.keys() - r.decisions.keys()):
            out.append(
                f"event {_name(key)}: logged decisions but the event is not in the events table"
            )
    return out


def _name(key: EventKey) -> str:
    """An event in a message: its id and (when it has one) its date."""
    return f"{key[0]} ({key[1]})" if key[1] else key[0]


def as_of_dates(events: Sequence[EventRecord]) -> set[date]:
    return {e.as_of for e in events}


def what_if_rows(w: Mapping[str, Any]) -> list[tuple[str, object, object]]:
    """The what-if comparison as (label, current, what-if) rows, for the text and HTML reports;
    a figure with no value (the latency of a replay with no run) is ``"n/a"``, as in the
    report's other tables (``--json`` keeps the ``null``)."""
    cur, alt = w["current"], w["what_if"]
    unsized = [("runs of unknown size", cur["unsized_runs"], alt["unsized_runs"])]
    rows = [
        ("runs", cur["runs"], alt["runs"]),
        ("entity runs", cur["entity_runs"], alt["entity_runs"]),
        ("date runs", cur["date_runs"], alt["date_runs"]),
        ("entity rows processed", cur["entity_rows"], alt["entity_rows"]),
        *(unsized if _unsized(w) else []),
        ("latency mean (s)", cur["latency_s"]["mean"], alt["latency_s"]["mean"]),
        ("latency p95 (s)", cur["latency_s"]["p95"], alt["latency_s"]["p95"]),
    ]
    return [(k, _na(a), _na(b)) for k, a, b in rows]


def _na(v: object) -> object:
    return "n/a" if v is None else v


def _unsized(w: Mapping[str, Any]) -> bool:
    """Whether either side has runs of unknown size."""
    return bool(w["current"]["unsized_runs"] or w["what_if"]["unsized_runs"])


def what_if_notes(w: Mapping[str, Any]) -> list[str]:
    """What qualifies the what-if table, for the text and HTML reports: the runs of unknown
    size, the runs of events before --since it does not re-plan, whether the current
    settings reproduce the logged decisions, and the closed loop it does not model."""
    notes = []
    if _unsized(w):
        notes.append(
            "note: runs of unknown size are not in entity rows processed (date runs with no "
            "entity universe and no completion reporting records_processed, e.g. of a "
            "date-granularity processor in a log without completions)"
        )
    left = w["not_replanned"]
    if left["events"]:
        notes.append(
            f"note: {left['runs']} logged run(s) of {left['events']} event(s) dated before "
            "--since (a date range by its start date) are not re-planned (neither column "
            "counts them; the table above does)"
        )
    m = w["current_matches_log"]["mismatches"]
    notes.append(
        (
            "current settings reproduce the logged decisions"
            + (" they re-plan" if left["events"] else "")
        )
        if m == 0
        else f"note: {m} logged decisions differ under the current settings (config or relation data changed?)"
    )
    if w.get("loop_not_modelled"):
        notes.append(f"warning: {w['loop_not_modelled']}")
    return notes
