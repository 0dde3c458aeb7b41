"""Window merge and fire: pure functions, the one statement of SPEC section 2 "Windows"
that every state store applies.

Invariant: ``apply(window, contributions, now)`` gives the same windows and fired triggers
as :class:`scoperouter.router.windows.WindowBook` fed the same decisions at the same
time (a property test checks it), and nothing here reads a clock or does I/O.

* entity sets unite; once the union passes ``max_entities`` the window becomes full date
  (reason ``fallback_threshold``); a full-date decision absorbs entity decisions;
* ``caused_by`` accumulates event ids; ``correlation_id`` is the first one seen;
  ``priority`` is critical if any event was;
* a window fires when an event with ``priority: critical`` joins it, or when its
  deadline (``min(last + quiet, opened + max_wait)``) has passed;
* a contribution arriving at or after its window's deadline never joins it: the due
  window fires as it is and the contribution opens a new one (the firing order of the
  routing engine, ``router/engine.py``: due windows fire before an event is merged).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.decisions import Decision
from scoperouter.router.windows import trigger_id
from scoperouter.state.model import Contribution, WindowState


def contributions(
    registry: CompiledRegistry, event: Event, decisions: Iterable[Decision]
) -> tuple[Contribution, ...]:
    """The window contributions of one planned event: one per run decision and date,
    with the processor's window parameters (the registry's defaults for an unknown one)."""
    d = registry.spec.defaults
    out: list[Contribution] = []
    for dec in decisions:
        if dec.action != "run":
            continue
        p = registry.processors.get(dec.processor)
        quiet = p.quiet_s if p is not None else parse_duration(d.window.quiet)
        max_wait = p.max_wait_s if p is not None else parse_duration(d.window.max_wait)
        max_entities = p.max_entities if p is not None else d.max_entities
        granularity = p.granularity if p is not None else ""
        ids = None if dec.scope == "date" or dec.entity_ids is None else tuple(dec.entity_ids)
        for day in dec.dates:
            out.append(
                Contribution(
                    processor=dec.processor,
                    day=day,
                    event_id=event.event_id,
                    correlation_id=event.correlation_id,
                    critical=event.priority == "critical",
                    entity_type=dec.entity_type,
                    entity_ids=ids,
                    reason=dec.reason,
                    quiet_s=quiet,
                    max_wait_s=max_wait,
                    max_entities=max_entities,
                    granularity=granularity,
                )
            )
    return tuple(out)


def merge(window: WindowState | None, c: Contribution, now: float) -> WindowState:
    """``window`` (None: not open) with contribution ``c`` merged at ``now``."""
    if window is None:
        window = WindowState(
            processor=c.processor,
            day=c.day,
            opened_at=now,
            last_at=now,
            entity_ids=frozenset(),
            entity_type=c.granularity,
            date_reason=None,
            caused_by=frozenset(),
            correlation_id=None,
            priority="normal",
            quiet_s=c.quiet_s,
            max_wait_s=c.max_wait_s,
            max_entities=c.max_entities,
        )
    ids = window.entity_ids
    etype = window.entity_type
    reason = window.date_reason
    if ids is None:
        pass  # full date absorbs everything
    elif c.entity_ids is None:
        ids, reason = None, c.reason
    else:
        if c.entity_type:
            etype = c.entity_type
        ids = ids | frozenset(c.entity_ids)
        if len(ids) > window.max_entities:
            ids, reason = None, "fallback_threshold"
    return WindowState(
        processor=window.processor,
        day=window.day,
        opened_at=window.opened_at,
        last_at=now,
        entity_ids=ids,
        entity_type=etype,
        date_reason=reason,
        caused_by=window.caused_by | {c.event_id},
        correlation_id=window.correlation_id
        if window.correlation_id is not None
        else c.correlation_id,
        priority="critical" if c.critical or window.priority == "critical" else "normal",
        quiet_s=window.quiet_s,
        max_wait_s=window.max_wait_s,
        max_entities=window.max_entities,
    )


def apply(
    window: WindowState | None, cs: Sequence[Contribution], now: float
) -> tuple[WindowState | None, list[WindowState]]:
    """Merge ``cs`` (one window key, arrival order) into ``window`` at ``now``.

    Returns the window left open (None: nothing open) and the windows that fired, in
    order. A window already due at ``now`` fires before anything joins it; a window fires
    right after a critical contribution joins it, or once its deadline is ``<= now`` (a
    zero ``quiet`` fires with the event that opened it)."""
    fired: list[WindowState] = []
    if window is not None and window.deadline <= now:
        fired.append(window)
        window = None
    for c in cs:
        window = merge(window, c, now)
        if c.critical or window.deadline <= now:
            fired.append(window)
            window = None
    return window, fired


def to_trigger(
    w: WindowState, fired_at: datetime | None = None, date_field: str = DEFAULT_DATE_FIELD
) -> Trigger:
    """The trigger a fired window sends (SPEC section 3); its id is a hash of its content;
    ``date_field`` keys its date on the wire (the registry's)."""
    caused = tuple(sorted(w.caused_by))
    if w.entity_ids is None or not w.entity_ids:
        scope = "date"
        ids: tuple[str, ...] | None = None
        reason = w.date_reason or "no_entities_in_event"
        etype: str | None = None
    else:
        scope = "entities"
        ids = tuple(sorted(w.entity_ids))
        reason = "entity_scope"
        etype = w.entity_type or None
    return Trigger(
        trigger_id=trigger_id(w.processor, w.day, scope, ids, caused),
        processor=w.processor,
        game_date=w.day,
        start_date=w.day,
        end_date=w.day,
        scope=cast(Any, scope),
        entity_type=etype,
        entity_ids=ids,
        reason=reason,
        caused_by=caused,
        correlation_id=w.correlation_id,
        priority=w.priority,
        fired_at=fired_at,
        date_field=date_field,
    )
