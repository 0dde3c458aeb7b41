"""Linking dispatch rows' triggers to the decision rows that caused them, in memory when
those decision rows have not been written yet (the SQLite execution log's flush).

Invariant: the result equals running, in order, for every link and every event it names,
``UPDATE log SET trigger_id = T WHERE event_id = E AND processor = P AND game_date
BETWEEN S AND E2 AND kind = 'decision' AND action = 'run' AND trigger_id IS NULL`` after
the buffered rows are inserted -- provided no row of a ``buffered`` event was written
before (the caller passes only events whose own row was new to the log). Links to events
not buffered are returned, in order, for that UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scoperouter.execution_log.rows import LOG_COLUMNS

Link = tuple[str, str, str, str, Sequence[str]]  # (trigger id, processor, start, end, caused_by)
LinkParams = tuple[str, str, str, str, str]  # (trigger id, event id, processor, start, end)

_EV, _PROC, _DATE, _KIND, _ACTION, _TRIGGER = (
    LOG_COLUMNS.index(c)
    for c in ("event_id", "processor", "game_date", "kind", "action", "trigger_id")
)


def link_buffered(
    log: list[tuple[Any, ...]], links: list[Link], buffered: set[str]
) -> list[LinkParams]:
    """Set ``trigger_id`` on the matching rows of ``log`` (rows in ``LOG_COLUMNS`` order,
    replaced in place) for links to ``buffered`` events; the UPDATE parameters of the
    other links, in order."""
    rows: dict[str, list[int]] = {}  # a buffered event's unlinked run-decision rows
    if buffered:
        for i, r in enumerate(log):
            if r[_KIND] == "decision" and r[_ACTION] == "run" and r[_EV] in buffered:
                rows.setdefault(r[_EV], []).append(i)
    out: list[LinkParams] = []
    for tid, proc, start, end, caused in links:
        for ev in caused:
            if ev not in buffered:
                out.append((tid, ev, proc, start, end))
                continue
            for i in rows.get(ev, ()):
                r = log[i]
                day = r[_DATE]
                if (
                    r[_TRIGGER] is None
                    and r[_PROC] == proc
                    and day is not None
                    and start <= day <= end
                ):
                    log[i] = (*r[:_TRIGGER], tid, *r[_TRIGGER + 1 :])
    return out
