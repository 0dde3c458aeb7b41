"""Bounded memos of what the execution log's hot path reads or formats again and again.

Invariant: each gives exactly what the plain computation gives (``date.isoformat()``, a
skip decision's ``reason``); a memo never holds more than :data:`MEMO_SIZE` entries (it is
cleared when full) and is safe to share between threads (a lost entry is recomputed).
"""

from __future__ import annotations

from datetime import date

from scoperouter.router.decisions import Decision

MEMO_SIZE = 4096

# dates' ISO text: ``date.isoformat`` formats through a printf (~3,000 instructions, ~1 us);
# an event stream names few dates
_day_iso: dict[date, str] = {}


def day_iso(d: date) -> str:
    """``d.isoformat()``, memoised for plain dates."""
    text = _day_iso.get(d)
    if text is None or type(d) is not date:  # (a datetime equal to a date is not one)
        text = d.isoformat()
        if type(d) is date:
            if len(_day_iso) >= MEMO_SIZE:
                _day_iso.clear()
            _day_iso[d] = text
    return text


skip_reasons: dict[int, tuple[Decision, str]] = {}
"""Skip decisions by identity -> (the decision, its reason), filled by
:func:`~.rows.decision_rows`: the planner builds one skip decision per processor and reason
and shares it between events, and a pydantic model's attribute read takes the interpreter's
generic path (two per skip; an event names every processor). An entry holds its decision,
so that decision's id is not reused while the entry is kept; a hit is checked by identity."""


def remember_skip(d: Decision, reason: str) -> None:
    """Keep skip decision ``d``'s ``reason`` in :data:`skip_reasons`."""
    if len(skip_reasons) >= MEMO_SIZE:
        skip_reasons.clear()
    skip_reasons[id(d)] = (d, reason)
