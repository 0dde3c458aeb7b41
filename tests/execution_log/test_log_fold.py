"""Folding a dispatch outcome into its decision row changes what is stored, never what is
read: every script of decisions, outcomes, flushes and restarts reads back (``read_log``,
the runs ``report`` builds from it) the same with folding as without."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logsupport import DAY, T0

import scoperouter.execution_log.sqlite_write as sqlite_write
from scoperouter.execution_log import SqliteExecutionLog, read_log
from scoperouter.execution_log.reader import LogData
from scoperouter.execution_log.runs import build_runs
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

OUTCOMES = (("ok", 1), ("retry", 1), ("ok", 2))
Step = tuple[Any, ...]


def _event(i: int) -> Event:
    return Event.model_validate(
        {"event_id": f"e{i}", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": [f"t0{i}p03"]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip


def _trigger(kind: str, i: int, j: int) -> Trigger:
    """``d``: event i's trigger; ``n``: the same without fired_at; ``m``: caused by events i
    and j; ``x``: event i's, date-scoped (its decision is entity-scoped: never folded)."""
    scope = "date" if kind == "x" else "entities"
    return Trigger(
        trigger_id=f"t{kind}-{i}-{j if kind == 'm' else 0}", processor="player_game_summary",
        game_date=DAY, start_date=DAY, end_date=DAY, scope=scope,
        entity_type="player" if scope == "entities" else None,
        entity_ids=(f"t0{i}p03",) if scope == "entities" else None, reason="entity_scope",
        caused_by=(f"e{i}", f"e{j}") if kind == "m" and i != j else (f"e{i}",),
        fired_at=None if kind == "n" else T0 + timedelta(seconds=10 + i),
    )  # fmt: skip


def _play(path: Path, steps: Sequence[Step], registry: CompiledRegistry, rel: InMemoryRelations) -> None:  # fmt: skip
    log = SqliteExecutionLog(path)
    try:
        for step in steps:
            if step[0] == "|":
                log.flush()
            elif step[0] == "||":
                log.close()
                log = SqliteExecutionLog(path)
            elif step[0] == "e":
                e = _event(step[1])
                log.record_decisions(e, plan(registry, rel, e, DAY), T0 + timedelta(seconds=step[1]),
                                     registry=registry, relations=rel)  # fmt: skip
            else:
                kind, i, j, k = step
                status, attempts = OUTCOMES[k]
                log.record_dispatch(_trigger(kind, i, j), status=status, attempts=attempts,
                                    latency_ms=1.0 + k, dispatched_at=T0 + timedelta(seconds=20 + k))  # fmt: skip
    finally:
        log.close()


@contextmanager
def _never_fold() -> Iterator[None]:
    def never(rows: Any, log: Any, ids: Any) -> tuple[Any, list[Any]]:
        return rows, [x if isinstance(x, tuple) else x.row(ids) for x in log]

    with mock.patch.object(sqlite_write, "fold", never):
        yield


def _answers(data: LogData) -> tuple[Any, ...]:
    """What readers see: decisions, events and completions in order, the dispatches and the
    runs ``report`` counts (order among equal times is free)."""
    runs, coalesced = build_runs(data)
    return (
        data.decisions,
        data.events,
        data.completions,
        sorted(map(repr, data.dispatches)),
        sorted(map(repr, runs)),
        coalesced,
    )


def _both(steps: Sequence[Step], registry: CompiledRegistry, rel: InMemoryRelations) -> tuple[Any, Any, int]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folded, plain = Path(tmp) / "folded.sqlite", Path(tmp) / "plain.sqlite"
        _play(folded, steps, registry, rel)
        with _never_fold():
            _play(plain, steps, registry, rel)
        with sqlite3.connect(folded) as c:
            n = int(c.execute("SELECT count(fired_at) FROM pipeline_execution_log").fetchone()[0])
        return _answers(read_log(folded)), _answers(read_log(plain)), n


def _script(text: str) -> list[Step]:
    """``e1`` event 1; ``d1`` / ``d1r`` / ``d1o`` its trigger's ok / retry / ok-after-retry
    outcome; ``n1``, ``x1`` likewise for the other kinds; ``m12``: caused by events 1 and 2."""
    out: list[Step] = []
    for w in text.split():
        if w in ("|", "||"):
            out.append((w,))
        elif w[0] == "e":
            out.append(("e", int(w[1])))
        else:
            j = int(w[2]) if w[0] == "m" else 0
            out.append((w[0], int(w[1]), j, {"r": 1, "o": 2}.get(w[-1], 0)))
    return out


@pytest.mark.parametrize(
    ("script", "folds"),
    [
        ("e1 e2 d1 d2", 2),  # both outcomes folded
        ("e1 d1 d1 | d1", 1),  # repeats: in the same flush and the next one
        ("e1 d1r d1o | d1r", 1),  # a retry folded, its ok a row of its own, the retry repeated
        ("e1 | d1", 0),  # the decision written before its outcome: a row and a link UPDATE
        ("e1 d1 || d1 d1o", 1),  # outcomes after a restart (filled from the folded row)
        ("e1 e2 m12 n1 x2", 0),  # two causes, no fired_at, another scope: never folded
        ("e1 e1 d1", 0),  # a redelivery in the flush: links are UPDATEs, nothing folds
        ("e1 x1 d1", 0),  # linked to the first trigger, which does not match: no fold
    ],
)
def test_folded_logs_read_back_as_unfolded_ones(
    registry: CompiledRegistry, relations: InMemoryRelations, script: str, folds: int
) -> None:
    """A table of scripts: the folded log reads back exactly as the unfolded one, and folds as many outcomes as expected."""
    folded, plain, n = _both(_script(script), registry, relations)
    assert n == folds
    assert folded == plain


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("e"), st.integers(1, 3)),
        st.tuples(st.sampled_from("dnmx"), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2)),
        st.just(("|",)),
        st.just(("||",)),
    ),
    max_size=14,
).map(lambda steps: _after_their_event(steps))


def _after_their_event(steps: list[Step]) -> list[Step]:
    """``steps`` without the outcomes logged before their events' decisions ever were: the router logs an event's decisions before it fires its
    triggers (runtime/log_bridge.py), and an outcome logged first could fold in a later
    flush beside the dispatch row it repeats (the unfolded log keeps that row alone)."""
    seen: set[int] = set()
    out: list[Step] = []
    for step in steps:
        if step[0] == "e":
            seen.add(step[1])
        elif len(step) == 4 and not {step[1], step[2] if step[0] == "m" else step[1]} <= seen:
            continue
        out.append(step)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps)
def test_any_script_reads_back_the_same_folded_or_not(
    registry: CompiledRegistry, relations: InMemoryRelations, steps: list[Step]
) -> None:
    """Random scripts of events, outcomes of four kinds of trigger, flushes and restarts: the same reader answers with and without folding."""
    folded, plain, _n = _both(steps, registry, relations)
    assert folded == plain
