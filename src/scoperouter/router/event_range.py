"""An event with ``game_date`` and also ``start_date``/``end_date`` (an extension of SPEC,
which calls only a range *without* ``game_date`` a backfill). Pure.

Invariant: no date of such an event is left unrun. Its decision (for an input that runs)
covers its ``game_date`` as that date alone would be run -- with its lookback and ``ahead``
dates, as-of capped -- and every date of the range as a backfill routes it (no lookback, no
as-of cap, and an ``ahead: {days: N}`` input's N days after the range's end). A decision
has one scope and one id set for all its dates, so it is the full date, reason
``backfill`` (which precedes every other run reason, SPEC section 2): the game date's own
entity scope widens, never narrows. A range of the game date alone (a trigger's echo,
``start_date`` = ``end_date`` = its date) changes nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

from scoperouter.messages.models import Event
from scoperouter.messages.unchecked import unchecked
from scoperouter.router.decisions import Decision


def has_other_range_dates(event: Event) -> bool:
    """Whether ``event`` has a game date and a range holding some other date."""
    start, end, day = event.start_date, event.end_date, event.game_date
    if start is None or end is None or day is None:
        return False
    return not start == end == day


def with_range(dec: Decision, event: Event, ahead: int) -> Decision:
    """The run ``dec`` (for ``event``'s game date) widened to every date of its range (and
    the ``ahead`` days after its end): the full date, reason ``backfill``."""
    start, end = event.start_date, event.end_date
    assert start is not None and end is not None  # has_other_range_dates
    n = (end - start).days + ahead
    dates: set[date] = set(dec.dates)
    dates.update(start + timedelta(days=i) for i in range(n + 1))
    return unchecked(
        Decision,
        {
            "processor": dec.processor,
            "action": "run",
            "scope": "date",
            "entity_type": None,
            "entity_ids": None,
            "dates": tuple(sorted(dates)),
            "reason": "backfill",
        },
    )


__all__ = ["has_other_range_dates", "with_range"]
