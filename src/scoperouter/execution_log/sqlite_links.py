"""Linking dispatch rows' triggers to the decision rows that caused them, in memory when
those decision rows have not been written yet (the SQLite execution log's flush).

Invariant: the result equals running, in order, for every link and every event it names,
``UPDATE log SET trigger_id = T WHERE event_id = E AND processor = P AND game_date
BETWEEN S AND E2 AND kind = 'decision' AND action = 'run' AND trigger_id IS NULL`` after
the buffered rows are inserted -- provided no row of a ``buffered`` event was written
before (the caller passes only events whose own row was new to the log). Links to events
not buffered are returned, in order, for that UPDATE. A row's trigger is the first link
(in order) that names its event, processor and date: :func:`row_trigger`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scoperouter.execution_log.rows import DECISION_COLUMNS, LOG_COLUMNS

Link = tuple[str, str, str, str, Sequence[str]]  # (trigger id, processor, start, end, caused_by)
LinkParams = tuple[str, str, str, str, str]  # (trigger id, event id, processor, start, end)
Pending = dict[str, list[tuple[str, str, str, str]]]
"""A buffered event's links, in order: event id -> [(trigger id, processor, start, end)]."""

_EV, _PROC, _DATE, _KIND, _ACTION, _TRIGGER = (
    LOG_COLUMNS.index(c)
    for c in ("event_id", "processor", "game_date", "kind", "action", "trigger_id")
)
assert tuple(
    DECISION_COLUMNS.index(c)
    for c in ("event_id", "processor", "game_date", "action", "trigger_id")
) == (_EV, _PROC, _DATE, _ACTION, _TRIGGER)


def split_links(links: list[Link], buffered: set[str]) -> tuple[Pending, list[LinkParams]]:
    """The links to ``buffered`` events by event id, and the UPDATE parameters of the
    others (both in order)."""
    pending: Pending = {}
    out: list[LinkParams] = []
    for tid, proc, start, end, caused in links:
        for ev in caused:
            if ev in buffered:
                pending.setdefault(ev, []).append((tid, proc, start, end))
            else:
                out.append((tid, ev, proc, start, end))
    return pending, out


def row_trigger(r: tuple[Any, ...], pending: Pending) -> str | None:
    """The trigger id the first pending link gives the log row ``r`` (``LOG_COLUMNS``
    order), None when none does (or it is not an unlinked run decision)."""
    mine = pending.get(r[_EV])
    if mine is None or r[_KIND] != "decision" or r[_ACTION] != "run" or r[_TRIGGER] is not None:
        return None
    day = r[_DATE]
    if day is None:
        return None
    proc = r[_PROC]
    for tid, p, start, end in mine:
        if p == proc and start <= day <= end:
            return tid
    return None


def linked(rows: list[tuple[Any, ...]], pending: Pending) -> list[tuple[Any, ...]]:
    """``rows`` -- decision rows, in ``LOG_COLUMNS`` or ``DECISION_COLUMNS`` order (the
    columns read and set come first in both) -- each with the trigger id
    :func:`row_trigger` gives it set."""
    out = []
    get = pending.get
    for r in rows:
        mine = get(r[_EV])
        if mine is not None and r[_ACTION] == "run" and r[_TRIGGER] is None:
            day, proc = r[_DATE], r[_PROC]
            if day is not None:
                for tid, p, start, end in mine:
                    if p == proc and start <= day <= end:
                        r = r[:_TRIGGER] + (tid,) + r[_TRIGGER + 1 :]  # noqa: RUF005 (faster)
                        break
        out.append(r)
    return out


def link_buffered(
    log: list[tuple[Any, ...]], links: list[Link], buffered: set[str]
) -> list[LinkParams]:
    """Set ``trigger_id`` on the matching rows of ``log`` (rows in ``LOG_COLUMNS`` order,
    replaced in place) for links to ``buffered`` events; the UPDATE parameters of the
    other links, in order."""
    pending, out = split_links(links, buffered)
    if pending:
        for i, r in enumerate(log):
            tid = row_trigger(r, pending)
            if tid is not None:
                log[i] = (*r[:_TRIGGER], tid, *r[_TRIGGER + 1 :])
    return out
