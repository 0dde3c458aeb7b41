"""One coalescing window as a plain value, and the pure rules that change it (SPEC section 2).

Invariant: a :class:`WindowState` is immutable and JSON-round-trippable
(:func:`window_to_json` / :func:`window_from_json`); every change goes through
:func:`merge_decision`, whose outcome is read from :data:`TRANSITIONS` -- the single table
of window rules (:mod:`.window_rules`) that ``docs/engine.md`` prints and the tests check.
Nothing here keeps a collection of windows, reads a clock or does I/O: the in-memory
:class:`WindowBook` and a database-backed store apply the same functions (a store inside
its transaction: load the row, ``merge_decision``, write it back; ``is_due`` /
``deadline`` for its index). A fired window's trigger is built by :mod:`.window_trigger`,
its ``caused_by`` is an :class:`~.event_ids.EventIds`; their names are re-exported here.
Two windows of one key join (:func:`join_windows`, a hand-over between stores)
idempotently: their causes by :func:`~.event_ids.join_causes`, whose ``caused_by_more`` is
a lower bound of the ids dropped (the rule is in :mod:`.event_ids`).

Every decision that enters a window also adds its event id to ``caused_by`` (sorted,
unique in the trigger), keeps the first ``correlation_id``, makes the priority critical
if the event was, moves ``last_at`` to ``now`` and, when its processor fires live then,
sets ``live`` (kept once set: the window fires live, whatever its processor's mode is when
it fires -- docs/rollout.md "Flip back").

A window whose ``last_at`` lies more than :data:`CLOCK_SLACK_S` ahead of ``now`` (the wall
clock stepped back since, NTP, or was ahead then) is due (:func:`is_due`), so one opened
while the clock was ahead does not wait for the clock to catch up. The engine and the
stores fire due windows before a decision merges, so no decision joins such a window:
:func:`reopened_at` (``opened_at`` moved back by the step) applies only to a caller of
:func:`merge_decision` that merges without firing due windows first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, cast

from scoperouter.messages.models import Event, Priority
from scoperouter.router.decisions import REASON_ORDER, Decision, Reason
from scoperouter.router.event_ids import CAUSED_BY_CAP, EventIds, join_causes
from scoperouter.router.window_rules import (
    TRANSITIONS,
    Effect,
    Input,
    Phase,
    Transition,
    transition_table_markdown,
)
from scoperouter.router.window_trigger import (
    json_string,
    json_strings,
    to_trigger,
    trigger_id,
    trigger_id_of_json,
    trigger_scope,
    window_trigger,
)

__all__ = [
    "CAUSED_BY_CAP",
    "CLOCK_SLACK_S",
    "TRANSITIONS",
    "Effect",
    "EventIds",
    "Input",
    "Phase",
    "Transition",
    "WindowParams",
    "WindowState",
    "classify",
    "deadline",
    "due_input",
    "is_due",
    "join_windows",
    "json_string",
    "json_strings",
    "merge_decision",
    "open_window",
    "other_type",
    "past_limit",
    "regrain",
    "regrain_reason",
    "relimit",
    "reopened_at",
    "to_trigger",
    "transition_table_markdown",
    "trigger_id",
    "trigger_id_of_json",
    "trigger_scope",
    "window_ahead",
    "window_from_json",
    "window_to_json",
    "window_trigger",
]


@dataclass(frozen=True, slots=True)
class WindowParams:
    """A processor's window settings (from the registry at the time they are applied)."""

    quiet_s: float
    max_wait_s: float
    max_entities: int
    entity_type: str  # the processor's granularity ("" when the processor is unknown)


class WindowState(NamedTuple):
    """One open window. ``entity_ids`` None = full date (``date_reason`` says why).
    ``live``: a decision joined it while its processor fired live (it fires live).
    A named tuple: immutable, cheap to build on every merge, compared by value."""

    processor: str
    day: date
    opened_at: float
    last_at: float
    entity_ids: frozenset[str] | None
    date_reason: Reason | None
    caused_by: EventIds
    correlation_id: str | None
    priority: Priority
    quiet_s: float
    max_wait_s: float
    max_entities: int
    entity_type: str
    live: bool = False

    @property
    def phase(self) -> Phase:
        return "date" if self.entity_ids is None else "entities"

    @property
    def deadline(self) -> float:
        """When the window fires: ``quiet`` after the last decision or ``max_wait`` after
        it opened, whichever is first."""
        return min(self.last_at + self.quiet_s, self.opened_at + self.max_wait_s)


CLOCK_SLACK_S = 60.0
"""How far (seconds) a window's last decision may lie ahead of ``now`` before the window is
due at once: further, the wall clock it was merged at has been stepped back since (or was
ahead then), and its deadline would wait for the clock to catch up. Within it (replicas'
clocks a little apart, a small NTP step) a window keeps its deadline."""


def deadline(w: WindowState) -> float:
    return w.deadline


def window_ahead(last_at: float, now: float) -> bool:
    """True when a window whose last decision came at ``last_at`` lies past
    :data:`CLOCK_SLACK_S` ahead of ``now`` (a clock stepped back): it is due now."""
    return last_at > now + CLOCK_SLACK_S


def reopened_at(opened_at: float, last_at: float, now: float) -> float:
    """A window's ``opened_at`` once a decision joins it at ``now``: moved back by the step
    when the clock went back since its last decision by more than :data:`CLOCK_SLACK_S`
    (``max_wait`` then counts the time that had passed, not a second time); else unchanged.
    A smaller ``now < last_at`` is no step: replicas' clocks a second apart, or a batch that
    read its clock before waiting on another replica's lock of the window -- moving the
    opening back on each of those fired hot windows far before ``max_wait``. The step case
    is not reached from the engine or the stores: such a window is due (:func:`is_due`,
    the same slack) and fires before a decision could join it."""
    return opened_at + (now - last_at) if last_at - now > CLOCK_SLACK_S else opened_at


def is_due(w: WindowState, now: float) -> bool:
    """True when ``w`` fires at ``now``: its deadline has passed, or it lies past
    :data:`CLOCK_SLACK_S` ahead of ``now`` (:func:`window_ahead`)."""
    return w.deadline <= now or window_ahead(w.last_at, now)


def due_input(w: WindowState, now: float) -> Input | None:
    """The timer input that fires ``w`` at ``now`` (None: not due yet)."""
    if w.last_at + w.quiet_s <= now:
        return "quiet_elapsed"
    if w.opened_at + w.max_wait_s <= now:
        return "max_wait_elapsed"
    return None


def open_window(processor: str, day: date, now: float, params: WindowParams) -> WindowState:
    """A new, empty entity window (the state a first decision merges into)."""
    return WindowState(
        processor=processor,
        day=day,
        opened_at=now,
        last_at=now,
        entity_ids=frozenset(),
        date_reason=None,
        caused_by=EventIds(),
        correlation_id=None,
        priority="normal",
        quiet_s=params.quiet_s,
        max_wait_s=params.max_wait_s,
        max_entities=params.max_entities,
        entity_type=params.entity_type,
    )


def classify(w: WindowState | None, decision: Decision) -> Input:
    """The table input a decision is for window ``w`` (None: no window yet)."""
    return _classify(w, decision)[0]


def _classify(w: WindowState | None, decision: Decision) -> tuple[Input, frozenset[str] | None]:
    """The input, and for an entity decision into an id window the united ids."""
    if decision.action != "run":
        return "skip", None
    if decision.scope == "date" or decision.entity_ids is None:
        return "date", None
    return _ids_input(w, decision.entity_ids, decision.entity_type)


def _ids_input(
    w: WindowState | None, ids: Iterable[str], etype: str | None
) -> tuple[Input, frozenset[str] | None]:
    """The input ids ``ids`` of type ``etype`` are for window ``w`` (None: none yet), and
    for ids into an id window the united ids."""
    have = w.entity_ids if w is not None else frozenset()
    if have is None:
        return "entities", None  # absorbed either way
    if have and w is not None and other_type(w.entity_type, etype):
        return "entities_other_type", None
    union = have.union(ids)
    limit = w.max_entities if w is not None else None
    return ("entities_past_max" if limit is not None and len(union) > limit else "entities"), union


def _outcome(
    w: WindowState,
    effect: Effect,
    union: frozenset[str] | None,
    etype: str | None,
    reason: Reason | None,
) -> tuple[frozenset[str] | None, Reason | None, str]:
    """Window ``w``'s ids, date reason and entity type after ``effect`` of an input of ids
    of type ``etype`` (``union``: the united ids) or of a full date for ``reason``."""
    ids, why, wtype = w.entity_ids, w.date_reason, w.entity_type
    if effect in ("open_ids", "union"):
        assert union is not None
        ids = union
        if etype:
            wtype = etype
    elif effect == "to_threshold":
        ids, why = None, "fallback_threshold"
        if etype:
            wtype = etype
    elif effect == "to_unmapped":
        ids, why = None, "unmapped_entity_type"
    elif effect == "to_date":
        ids, why = None, reason
    return ids, why, wtype


def past_limit(ids: frozenset[str] | None, limit: int) -> bool:
    """True when an id window holding ``ids`` must become full date under threshold
    ``limit`` (the registry's ``max_entities`` now; inclusive: exactly ``limit`` ids stay
    ids), as the table's ``entities_past_max`` makes it. A full-date window (None) never
    does: full date is final."""
    return (
        ids is not None
        and len(ids) > limit
        and TRANSITIONS[("entities", "entities_past_max")].effect == "to_threshold"
    )


def relimit(w: WindowState, limit: int) -> WindowState:
    """``w`` under threshold ``limit`` (a restart or a hand-over to a registry whose
    ``max_entities`` changed): its ids past the limit make it full date as the table's
    ``entities_past_max`` does (``fallback_threshold``; every id is covered, nothing is
    lost); a full-date window stays full date, a raised limit shrinks nothing."""
    if past_limit(w.entity_ids, limit):
        return w._replace(entity_ids=None, date_reason="fallback_threshold", max_entities=limit)
    return w if w.max_entities == limit else w._replace(max_entities=limit)


def regrain_reason(ids: frozenset[str] | None, window_type: str, granularity: str) -> Reason | None:
    """Why an id window holding ``ids`` of ``window_type`` must become full date under the
    processor's ``granularity`` now (a restart or a hand-over to a registry that changed
    it), or None when it stays: ``date_granularity`` when the processor is never
    entity-level now, ``unmapped_entity_type`` when its ids are of another type (as an
    entity decision of another type joining it makes it, :data:`TRANSITIONS`'s
    ``entities_other_type``). A full-date or empty window, or a processor no longer in the
    registry (``granularity`` ""), stays as it is."""
    if not ids or not other_type(window_type, granularity):
        return None
    return "date_granularity" if granularity == "date" else "unmapped_entity_type"


def regrain(w: WindowState, granularity: str) -> WindowState:
    """``w`` under the processor's ``granularity`` now (:func:`regrain_reason`): ids of
    another type than it takes now are never sent labelled as their old type; every id
    stays covered (full date)."""
    reason = regrain_reason(w.entity_ids, w.entity_type, granularity)
    return w if reason is None else w._replace(entity_ids=None, date_reason=reason)


def other_type(window_type: str, decision_type: str | None) -> bool:
    """True when ids of ``decision_type`` cannot join ids of ``window_type`` (both known
    and different)."""
    return bool(window_type) and bool(decision_type) and window_type != decision_type


def merge_decision(
    w: WindowState | None,
    event: Event,
    decision: Decision,
    day: date,
    now: float,
    params: WindowParams,
    live: bool = False,
) -> tuple[WindowState | None, bool]:
    """Apply one decision for ``day`` to window ``w`` (None: closed); ``live``: its
    processor fires live now (the window remembers it).

    Returns ``(state, fire_now)``: the window after the decision (None: still closed, a
    skip) and whether it must fire at once (a critical event). The transition comes from
    :data:`TRANSITIONS`."""
    phase: Phase = "closed" if w is None else w.phase
    if w is None and decision.action == "run":
        w = open_window(decision.processor, day, now, params)
    inp, union = _classify(w, decision)
    tr = TRANSITIONS[(phase, inp)]
    if tr.effect == "ignore" or w is None:
        return (None if phase == "closed" else w), False
    ids, reason, etype = _outcome(w, tr.effect, union, decision.entity_type, decision.reason)
    w = WindowState(
        w.processor,
        w.day,
        reopened_at(w.opened_at, w.last_at, now),
        now,
        ids,
        reason,
        w.caused_by.add(event.event_id),
        w.correlation_id if w.correlation_id is not None else event.correlation_id,
        "critical" if event.priority == "critical" else w.priority,
        w.quiet_s,
        w.max_wait_s,
        w.max_entities,
        etype,
        live or w.live,
    )
    fire = event.priority == "critical" and TRANSITIONS[(tr.next, "critical")].effect == "fire"
    return w, fire


def join_windows(a: WindowState, b: WindowState) -> WindowState:
    """Two open windows of one key as one (one store's windows handed over into another
    that holds the key too: the closed loop switched on or off across a restart). The
    later-opened window joins the earlier one as a decision of its content would, by
    :data:`TRANSITIONS` (ids unite; past ``max_entities`` or of another type: full date;
    a full date absorbs ids and keeps its first reason); causes unite by
    :func:`~.event_ids.join_causes` (capped; the count of dropped ones a lower bound that
    joining again does not raise), the earlier ``opened_at``, the later ``last_at`` and
    the first ``correlation_id`` are kept, critical when either is, live when either is;
    durations and threshold are the earlier window's. Equal windows give that window, and
    a window joined into one it was already joined into changes nothing (a repeated
    hand-over); every id of either stays covered."""
    if a == b:
        return a
    first, then = (a, b) if a.opened_at <= b.opened_at else (b, a)
    etype = then.entity_type or None
    inp: Input
    if then.entity_ids is None:
        inp, union = "date", None
    else:
        inp, union = _ids_input(first, then.entity_ids, etype)
    effect = TRANSITIONS[(first.phase, inp)].effect
    ids, reason, wtype = _outcome(first, effect, union, etype, then.date_reason)
    return WindowState(
        first.processor,
        first.day,
        first.opened_at,
        max(a.last_at, b.last_at),
        ids,
        reason,
        join_causes(first.caused_by, then.caused_by),
        first.correlation_id if first.correlation_id is not None else then.correlation_id,
        "critical" if "critical" in (a.priority, b.priority) else "normal",
        first.quiet_s,
        first.max_wait_s,
        first.max_entities,
        wtype,
        a.live or b.live,
    )


# ---------------------------------------------------------------------- persistence
def window_to_json(w: WindowState) -> dict[str, Any]:
    """The window as one JSON object (the snapshot's item; a store's row); ``live`` only
    when set (a snapshot written before it was kept reads as not live)."""
    out: dict[str, Any] = {
        "processor": w.processor,
        "date": w.day.isoformat(),
        "opened_at": w.opened_at,
        "last_at": w.last_at,
        "entity_ids": sorted(w.entity_ids) if w.entity_ids is not None else None,
        "entity_type": w.entity_type,
        "date_reason": w.date_reason,
        "caused_by": list(w.caused_by),
        "caused_by_more": w.caused_by.more,
        "correlation_id": w.correlation_id,
        "priority": w.priority,
    }
    if w.live:
        out["live"] = True
    return out


def window_from_json(item: Mapping[str, Any], params: WindowParams) -> WindowState:
    """The inverse of :func:`window_to_json`. Durations and threshold come from ``params``
    (the registry now: a changed registry applies to restored windows, :func:`relimit`:
    ids past a lowered ``max_entities`` become full date; :func:`regrain`: ids of another
    type than the granularity now become full date). Raises ValueError on a malformed
    item."""
    try:
        day = date.fromisoformat(item["date"])
        reason = item.get("date_reason")
        if reason is not None and reason not in REASON_ORDER:
            raise ValueError(f"unknown reason {reason!r}")
        ids = item.get("entity_ids")
        opened = float(item["opened_at"])
        w = WindowState(
            processor=str(item["processor"]),
            day=day,
            opened_at=opened,
            last_at=float(item["last_at"]),
            entity_ids=frozenset(map(str, ids)) if ids is not None else None,
            date_reason=cast(Reason | None, reason),
            caused_by=EventIds(
                map(str, item.get("caused_by", [])), int(item.get("caused_by_more", 0))
            ),
            correlation_id=item.get("correlation_id"),
            priority="critical" if item.get("priority") == "critical" else "normal",
            quiet_s=params.quiet_s,
            max_wait_s=params.max_wait_s,
            max_entities=params.max_entities,
            entity_type=str(item["entity_type"]) if item.get("entity_type") else params.entity_type,
            live=item.get("live") is True,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed window: {exc}") from exc
    return regrain(relimit(w, params.max_entities), params.entity_type)
