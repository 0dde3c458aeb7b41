"""Window merge and fire for the state stores: pure functions over persisted windows, the
rules read from :data:`scoperouter.router.window_state.TRANSITIONS` and the trigger built by
:func:`scoperouter.router.window_state.to_trigger` (one statement of SPEC section 2
"Windows" for the in-memory book and every store).

Invariant: ``apply(window, contributions, now)`` gives the same windows and fired triggers
as :class:`scoperouter.router.windows.WindowBook` fed the same decisions at the same
time (a property test checks it), and nothing here reads a clock or does I/O.

* entity sets unite; once the union passes ``max_entities`` the window becomes full date
  (reason ``fallback_threshold``) -- the threshold of the contribution, i.e. the registry
  in force when it was planned, not the one the window opened with (a restart may have
  lowered or raised it; :mod:`.window_limits` applies it to the windows no contribution
  joins); ids of another entity type than the window's make it
  full date (``unmapped_entity_type``); a full-date decision absorbs entity decisions;
* ``caused_by`` accumulates event ids, at most ``CAUSED_BY_CAP`` of them (the smallest,
  the ones a trigger lists; ``caused_more`` counts the rest: a hot window's row stays
  bounded); ``correlation_id`` is the first one seen;
  ``priority`` is critical if any event was; ``live`` once a contribution joined while
  its processor fired live (``apply``'s ``live``; the window then fires live);
* a window fires when an event with ``priority: critical`` joins it, or when its
  deadline (``min(last + quiet, opened + max_wait)``) has passed, or when its ``last``
  lies past ``CLOCK_SLACK_S`` ahead of ``now`` (the wall clock was stepped back: due
  now, :func:`is_due`) -- so :func:`apply` fires it before a contribution could join it,
  and :func:`merge`'s :func:`scoperouter.router.window_state.reopened_at` (``opened``
  moved back by such a step) never applies here;
* a contribution arriving at or after its window's deadline never joins it: the due
  window fires as it is and the contribution opens a new one (the firing order of the
  routing engine, ``router/engine.py``: due windows fire before an event is merged).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.decisions import Decision, Reason
from scoperouter.router.window_state import (
    CAUSED_BY_CAP,
    TRANSITIONS,
    EventIds,
    Input,
    Phase,
    join_windows,
    other_type,
    reopened_at,
    window_ahead,
)
from scoperouter.router.window_state import WindowState as BookWindow
from scoperouter.router.window_state import to_trigger as book_trigger
from scoperouter.state.model import Contribution, WindowState


def contributions(
    registry: CompiledRegistry, event: Event, decisions: Iterable[Decision]
) -> tuple[Contribution, ...]:
    """The window contributions of one planned event: one per run decision and date,
    with the processor's window parameters (the registry's defaults for an unknown one)."""
    runs = [dec for dec in decisions if dec.action == "run"]  # most are prebuilt skips
    if not runs:
        return ()
    d = registry.spec.defaults
    eid, corr, critical = event.event_id, event.correlation_id, event.priority == "critical"
    out: list[Contribution] = []
    for dec in runs:
        p = registry.processors.get(dec.processor)
        quiet = p.quiet_s if p is not None else parse_duration(d.window.quiet)
        max_wait = p.max_wait_s if p is not None else parse_duration(d.window.max_wait)
        max_entities = p.max_entities if p is not None else d.max_entities
        granularity = p.granularity if p is not None else ""
        ids = None if dec.scope == "date" or dec.entity_ids is None else tuple(dec.entity_ids)
        for day in dec.dates:  # positional (the field order): cheaper than keywords
            out.append(
                Contribution(
                    dec.processor,
                    day,
                    eid,
                    corr,
                    critical,
                    dec.entity_type,
                    ids,
                    dec.reason,
                    quiet,
                    max_wait,
                    max_entities,
                    granularity,
                )
            )
    return tuple(out)


def _input(
    have: frozenset[str] | None, etype: str, limit: int, c: Contribution
) -> tuple[Input, frozenset[str] | None]:
    """The transition-table input of contribution ``c`` for a window holding ``have`` (None:
    full date; a closed window holds none) of entity type ``etype`` with threshold
    ``limit``, and for entity ids into an id window the united ids (the rules of
    :func:`scoperouter.router.window_state.classify`, on a contribution)."""
    if c.entity_ids is None:
        return "date", None
    if have is None:
        return "entities", None  # absorbed either way
    if have and other_type(etype, c.entity_type):
        return "entities_other_type", None
    union = have.union(c.entity_ids)
    return ("entities_past_max" if len(union) > limit else "entities"), union


_NO_IDS: frozenset[str] = frozenset()


def union_causes(
    a: frozenset[str], a_more: int, b: Iterable[str], b_more: int = 0
) -> tuple[frozenset[str], int]:
    """Two windows' causes united and capped: the ``CAUSED_BY_CAP`` smallest ids of the
    union, and the count of the rest plus both counts carried (the ids a trigger of the
    uncapped union would list, and its ``caused_by_more``)."""
    every = a.union(b)
    if len(every) <= CAUSED_BY_CAP:
        return every, a_more + b_more
    kept = sorted(every)[:CAUSED_BY_CAP]
    return frozenset(kept), a_more + b_more + len(every) - CAUSED_BY_CAP


def add_cause(ids: frozenset[str], more: int, event_id: str) -> tuple[frozenset[str], int]:
    """:func:`union_causes` of one new id, in O(cap): a full set swaps its largest id for a
    smaller newcomer, and counts one more either way."""
    if event_id in ids:
        return ids, more
    if len(ids) < CAUSED_BY_CAP:
        return ids.union((event_id,)), more
    if len(ids) > CAUSED_BY_CAP:  # a row written before the cap: cap it now
        return union_causes(ids, more, (event_id,))
    top = max(ids)
    if event_id < top:
        return ids.difference((top,)).union((event_id,)), more + 1
    return ids, more + 1


def registry_limits(
    registry: CompiledRegistry,
) -> tuple[dict[str, int], int, dict[str, str]]:
    """Every processor's ``max_entities`` now, the defaults' (a processor no longer in the
    registry) and every processor's granularity now: what :meth:`StateStore.apply_limits`
    takes."""
    limits = {name: p.max_entities for name, p in registry.processors.items()}
    grains = {name: p.granularity for name, p in registry.processors.items()}
    return limits, registry.spec.defaults.max_entities, grains


def registry_durations(
    registry: CompiledRegistry,
) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """Every processor's window ``(quiet_s, max_wait_s)`` now and the defaults' (a processor
    no longer in the registry): the durations :meth:`StateStore.apply_limits` gives stored
    windows (the in-memory book's, :func:`~scoperouter.router.windows.window_params`)."""
    spans = {name: (p.quiet_s, p.max_wait_s) for name, p in registry.processors.items()}
    w = registry.spec.defaults.window
    return spans, (parse_duration(w.quiet), parse_duration(w.max_wait))


def merge(
    window: WindowState | None, c: Contribution, now: float, live: bool = False
) -> WindowState:
    """``window`` (None: not open) with contribution ``c`` merged at ``now``; the outcome is
    read from :data:`scoperouter.router.window_state.TRANSITIONS`, the one table of window
    rules the in-memory book applies too. A closed window opens with ``c``'s processor
    parameters, no ids, no causes and its first reason still unset. The threshold is
    ``c``'s (the registry now); the window keeps its durations (a router's start gave every
    stored window the registry's: :mod:`.window_limits`). ``live``: ``c``'s processor
    fires live now (the window is ``live`` from then on)."""
    if window is None:
        phase: Phase = "closed"
        ids: frozenset[str] | None = _NO_IDS
        etype, reason = c.granularity, None
    else:
        phase = "date" if window.entity_ids is None else "entities"
        ids, etype, reason = window.entity_ids, window.entity_type, window.date_reason
    inp, union = _input(ids, etype, c.max_entities, c)
    effect = TRANSITIONS[(phase, inp)].effect
    if effect in ("open_ids", "union"):
        assert union is not None
        ids = union
        if c.entity_type:
            etype = c.entity_type
    elif effect == "to_threshold":
        ids, reason = None, "fallback_threshold"
        if c.entity_type:
            etype = c.entity_type
    elif effect == "to_unmapped":
        ids, reason = None, "unmapped_entity_type"
    elif effect == "to_date":
        ids, reason = None, c.reason
    # "absorb": a full-date window keeps its ids (none) and its first reason
    critical = c.critical
    if window is None:  # positional (the field order): cheaper than keywords
        return WindowState(
            c.processor,
            c.day,
            now,
            now,
            ids,
            etype,
            reason,
            frozenset((c.event_id,)),
            c.correlation_id,
            "critical" if critical else "normal",
            c.quiet_s,
            c.max_wait_s,
            c.max_entities,
            0,
            live,
        )
    causes, more = add_cause(window.caused_by, window.caused_more, c.event_id)
    return WindowState(
        window.processor,
        window.day,
        reopened_at(window.opened_at, window.last_at, now),
        now,
        ids,
        etype,
        reason,
        causes,
        window.correlation_id if window.correlation_id is not None else c.correlation_id,
        "critical" if critical or window.priority == "critical" else "normal",
        window.quiet_s,
        window.max_wait_s,
        c.max_entities,
        more,
        live or window.live,
    )


def is_due(w: WindowState, now: float) -> bool:
    """True when stored window ``w`` fires at ``now``: its deadline has passed, or it lies
    past ``CLOCK_SLACK_S`` ahead of ``now`` (the book's rule,
    :func:`scoperouter.router.window_state.is_due`)."""
    return w.deadline <= now or window_ahead(w.last_at, now)


def apply(
    window: WindowState | None, cs: Sequence[Contribution], now: float, live: bool = False
) -> tuple[WindowState | None, list[WindowState]]:
    """Merge ``cs`` (one window key, arrival order) into ``window`` at ``now``; ``live``:
    their processor fires live now.

    Returns the window left open (None: nothing open) and the windows that fired, in
    order. A window already due at ``now`` (:func:`is_due`) fires before anything joins
    it; a window fires right after a critical contribution joins it, or once its deadline
    is ``<= now`` (a zero ``quiet`` fires with the event that opened it)."""
    fired: list[WindowState] = []
    if window is not None and is_due(window, now):
        fired.append(window)
        window = None
    for c in cs:
        window = merge(window, c, now, live)
        if c.critical or window.deadline <= now:
            fired.append(window)
            window = None
    return window, fired


def book_window(w: WindowState) -> BookWindow:
    """A stored window as the in-memory book's value (the one trigger builder and the
    window rules take it)."""
    return BookWindow(
        processor=w.processor,
        day=w.day,
        opened_at=w.opened_at,
        last_at=w.last_at,
        entity_ids=w.entity_ids,
        date_reason=cast("Reason | None", w.date_reason),  # a string: no typing call
        caused_by=EventIds(w.caused_by, w.caused_more),
        correlation_id=w.correlation_id,
        priority=w.priority,
        quiet_s=w.quiet_s,
        max_wait_s=w.max_wait_s,
        max_entities=w.max_entities,
        entity_type=w.entity_type,
        live=w.live,
    )


def stored_window(w: BookWindow) -> WindowState:
    """The inverse of :func:`book_window`."""
    return WindowState(
        w.processor,
        w.day,
        w.opened_at,
        w.last_at,
        w.entity_ids,
        w.entity_type,
        w.date_reason,
        w.caused_by.frozen(),
        w.correlation_id,
        w.priority,
        w.quiet_s,
        w.max_wait_s,
        w.max_entities,
        w.caused_by.more,
        w.live,
    )


def join(a: WindowState, b: WindowState) -> WindowState:
    """Two stored windows of one key as one, by the book's rule
    (:func:`scoperouter.router.window_state.join_windows`): a hand-over between stores."""
    return a if a == b else stored_window(join_windows(book_window(a), book_window(b)))


def to_trigger(
    w: WindowState, fired_at: datetime | None = None, date_field: str = DEFAULT_DATE_FIELD
) -> Trigger:
    """The trigger a fired window sends (SPEC section 3), built by the one trigger builder
    :func:`scoperouter.router.window_state.to_trigger`; ``fired_at`` stamped."""
    return book_trigger(book_window(w), date_field, fired_at)
