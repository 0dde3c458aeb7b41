"""One coalescing window as a plain value, and the pure rules that change it (SPEC section 2).

Invariant: a :class:`WindowState` is immutable and JSON-round-trippable
(:func:`window_to_json` / :func:`window_from_json`); every change goes through
:func:`merge_decision`, whose outcome is read from :data:`TRANSITIONS` -- the single table
of window rules that ``docs/engine.md`` prints and the tests check. Nothing here keeps a
collection of windows, reads a clock or does I/O: the in-memory :class:`WindowBook` and a
database-backed store apply the same functions (a store inside its transaction: load the
row, ``merge_decision``, write it back; ``is_due`` / ``deadline`` for its index).

Window rules, as a state machine per ``(processor, date)``:

* phases ``closed`` (no window), ``entities`` (an id set), ``date`` (full date);
* inputs: a decision classified by :func:`classify` (``skip``, ``entities``,
  ``entities_past_max``, ``entities_other_type``, ``date``), then ``critical`` when the
  event was critical, or a timer input (``quiet_elapsed``, ``max_wait_elapsed``) or
  ``flush``.

An id set has one entity type: ids of another type (a window opened before a restart that
changed the processor's granularity) are never united with it -- the window becomes full
date (``unmapped_entity_type``), so no id goes out labelled with a type it is not.

Every decision that enters a window also adds its event id to ``caused_by`` (sorted,
unique in the trigger), keeps the first ``correlation_id``, makes the priority critical
if the event was, and moves ``last_at`` to ``now``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple, cast

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Event, Priority, Trigger
from scoperouter.messages.unchecked import unchecked
from scoperouter.router.decisions import REASON_ORDER, Decision, Reason

Phase = Literal["closed", "entities", "date"]
Input = Literal[
    "skip",
    "entities",
    "entities_past_max",
    "entities_other_type",
    "date",
    "critical",
    "quiet_elapsed",
    "max_wait_elapsed",
    "flush",
]
Effect = Literal[
    "ignore", "open_ids", "union", "to_threshold", "to_unmapped", "to_date", "absorb", "fire"
]


@dataclass(frozen=True, slots=True)
class Transition:
    next: Phase
    effect: Effect
    rule: str  # one line, printed in docs/engine.md


_FIRE_RULES: dict[Input, str] = {
    "critical": "an event with `priority: critical` fires its windows at once",
    "quiet_elapsed": "fires `quiet` after the last decision",
    "max_wait_elapsed": "fires `max_wait` after it opened (even if still fed)",
    "flush": "shutdown / end of stream: fires what is open",
}

# The window rules. (phase, input) -> transition; a pair that is absent cannot happen
# (a closed window has no timer and cannot fire).
TRANSITIONS: dict[tuple[Phase, Input], Transition] = {
    ("closed", "skip"): Transition("closed", "ignore", "skip decisions never enter a window"),
    ("closed", "entities"): Transition("entities", "open_ids", "opens with the decision's ids"),
    ("closed", "entities_past_max"): Transition(
        "date",
        "to_threshold",
        "more ids than `max_entities`: opens at full date (`fallback_threshold`)",
    ),
    ("closed", "date"): Transition(
        "date", "to_date", "opens at full date with the decision's reason"
    ),
    ("entities", "skip"): Transition("entities", "ignore", "skip decisions never enter a window"),
    ("entities", "entities"): Transition("entities", "union", "entity sets unite"),
    ("entities", "entities_past_max"): Transition(
        "date", "to_threshold", "the union passes `max_entities`: full date (`fallback_threshold`)"
    ),
    ("entities", "entities_other_type"): Transition(
        "date",
        "to_unmapped",
        "ids of another entity type (the granularity changed): full date (`unmapped_entity_type`)",
    ),
    ("entities", "date"): Transition(
        "date", "to_date", "a full-date decision absorbs the ids (its reason)"
    ),
    ("date", "skip"): Transition("date", "ignore", "skip decisions never enter a window"),
    ("date", "entities"): Transition("date", "absorb", "full date absorbs entity decisions"),
    ("date", "entities_past_max"): Transition(
        "date", "absorb", "full date absorbs entity decisions"
    ),
    ("date", "entities_other_type"): Transition(
        "date", "absorb", "full date absorbs entity decisions"
    ),
    ("date", "date"): Transition("date", "absorb", "full date stays; the first reason is kept"),
    **{
        (ph, inp): Transition("closed", "fire", rule)
        for ph in ("entities", "date")
        for inp, rule in _FIRE_RULES.items()
    },
}


CAUSED_BY_CAP = 1000
"""Most event ids a window (and its trigger's ``caused_by``) lists; later ones are only
counted (``caused_by_more``): a hot window's trigger stays small."""


class EventIds:
    """An immutable set of event ids with O(1) :meth:`add` (a window's ``caused_by``).

    A hot window merges thousands of events; copying a frozenset per merge would make that
    quadratic, so the ids are a persistent chain (each :meth:`add` shares its tail) and
    become a frozenset only when read (:meth:`frozen`, cached per node). At most
    :data:`CAUSED_BY_CAP` ids are kept, the smallest, as the stores keep them
    (:func:`scoperouter.state.merge.add_cause`: an add past the cap is O(cap) there and here,
    so replay and ``serve`` list the same ``caused_by``); :attr:`more` counts the rest."""

    __slots__ = ("_frozen", "_head", "_n", "_tail", "more")

    def __init__(self, ids: Iterable[str] = (), more: int = 0) -> None:
        self._head: str | None = None
        self._tail: EventIds | None = None
        kept = sorted(set(ids))
        self._frozen: frozenset[str] | None = frozenset(kept[:CAUSED_BY_CAP])
        self._n = len(self._frozen)
        self.more: int = more + max(0, len(kept) - CAUSED_BY_CAP)

    def add(self, event_id: str) -> EventIds:
        node = EventIds.__new__(EventIds)
        node._tail, node._frozen = self, None
        if self._n >= CAUSED_BY_CAP:  # full: keep the smallest ids (as state.merge.add_cause)
            ids = self.frozen()  # a smaller newcomer takes the largest id's place
            node._head, node._n, node.more = None, self._n, self.more + 1
            if event_id in ids:
                node.more = self.more
            elif event_id < (top := max(ids)):
                node._tail, node._frozen = None, ids.difference((top,)).union((event_id,))
        else:
            node._head, node._n, node.more = event_id, self._n + 1, self.more
        return node

    def frozen(self) -> frozenset[str]:
        """The ids as a frozenset (computed once per node)."""
        if self._frozen is not None:
            return self._frozen
        heads: list[str] = []
        node: EventIds | None = self
        while node is not None and node._frozen is None:
            if node._head is not None:
                heads.append(node._head)
            node = node._tail
        base = node._frozen if node is not None and node._frozen is not None else frozenset()
        self._frozen = base.union(heads)
        return self._frozen

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.frozen()))

    def __len__(self) -> int:
        return len(self.frozen())

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.frozen()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventIds):
            return self.frozen() == other.frozen() and self.more == other.more
        if isinstance(other, frozenset | set):
            return self.frozen() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.frozen())

    def __repr__(self) -> str:
        more = f", more={self.more}" if self.more else ""
        return f"EventIds({sorted(self.frozen())!r}{more})"


@dataclass(frozen=True, slots=True)
class WindowParams:
    """A processor's window settings (from the registry at the time they are applied)."""

    quiet_s: float
    max_wait_s: float
    max_entities: int
    entity_type: str  # the processor's granularity ("" when the processor is unknown)


class WindowState(NamedTuple):
    """One open window. ``entity_ids`` None = full date (``date_reason`` says why).
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

    @property
    def phase(self) -> Phase:
        return "date" if self.entity_ids is None else "entities"

    @property
    def deadline(self) -> float:
        """When the window fires: ``quiet`` after the last decision or ``max_wait`` after
        it opened, whichever is first."""
        return min(self.last_at + self.quiet_s, self.opened_at + self.max_wait_s)


def deadline(w: WindowState) -> float:
    return w.deadline


def is_due(w: WindowState, now: float) -> bool:
    """True when ``w`` fires at ``now`` (its deadline has passed)."""
    return w.deadline <= now


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
    have = w.entity_ids if w is not None else frozenset()
    if have is None:
        return "entities", None  # absorbed either way
    if have and w is not None and other_type(w.entity_type, decision.entity_type):
        return "entities_other_type", None
    union = have.union(decision.entity_ids)
    limit = w.max_entities if w is not None else None
    return ("entities_past_max" if limit is not None and len(union) > limit else "entities"), union


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
) -> tuple[WindowState | None, bool]:
    """Apply one decision for ``day`` to window ``w`` (None: closed).

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
    ids: frozenset[str] | None = w.entity_ids
    reason = w.date_reason
    etype = w.entity_type
    if tr.effect in ("open_ids", "union"):
        assert union is not None
        ids = union
        if decision.entity_type:
            etype = decision.entity_type
    elif tr.effect == "to_threshold":
        ids, reason = None, "fallback_threshold"
        if decision.entity_type:
            etype = decision.entity_type
    elif tr.effect == "to_unmapped":
        ids, reason = None, "unmapped_entity_type"
    elif tr.effect == "to_date":
        ids, reason = None, decision.reason
    w = WindowState(
        w.processor,
        w.day,
        w.opened_at,
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
    )
    fire = event.priority == "critical" and TRANSITIONS[(tr.next, "critical")].effect == "fire"
    return w, fire


json_string = json.encoder.encode_basestring_ascii  # json.dumps's string encoder (C)


def json_strings(items: Iterable[str]) -> str:
    """The compact JSON array of ``items`` exactly as ``json.dumps`` writes it."""
    return "[" + ",".join(map(json_string, items)) + "]"


def trigger_id(
    processor: str,
    day: date,
    scope: str,
    ids: tuple[str, ...] | None,
    caused_by: tuple[str, ...],
    caused_by_more: int = 0,
) -> str:
    """Deterministic id of a trigger: same window content -> same id (idempotent dispatch)."""
    return trigger_id_of_json(
        json_string(processor),
        day.isoformat(),
        scope,
        None if ids is None else json_strings(ids),
        json_strings(caused_by),
        caused_by_more,
    )


def trigger_id_of_json(
    processor_json: str,
    day_iso: str,
    scope: str,
    ids_json: str | None,
    caused_json: str,
    caused_by_more: int,
) -> str:
    """:func:`trigger_id` from the parts already JSON-encoded (a caller writing the body
    encodes them once): the SHA-256 of the compact JSON array ``[processor, day, scope,
    ids, caused_by]`` (``caused_by_more`` appended when not 0: ids of uncapped windows are
    unchanged), byte for byte what ``json.dumps(..., separators=(",", ":"))`` writes."""
    more = f",{int(caused_by_more)}]" if caused_by_more else "]"
    ids = "null" if ids_json is None else ids_json
    payload = f'[{processor_json},"{day_iso}",{json_string(scope)},{ids},{caused_json}{more}'
    return "t-" + hashlib.sha256(payload.encode("ascii")).hexdigest()[:24]


def trigger_scope(
    entity_ids: frozenset[str] | None, date_reason: str | None, entity_type: str
) -> tuple[Literal["date", "entities"], tuple[str, ...] | None, str, str | None]:
    """A fired window's ``(scope, entity_ids, reason, entity_type)`` on its trigger: entity
    scope with the ids sorted, or date scope (an empty id set cannot happen: a run decision
    names ids or is date scope)."""
    if entity_ids is None or not entity_ids:
        reason = (date_reason if entity_ids is None else None) or "no_entities_in_event"
        return "date", None, reason, None
    return "entities", tuple(sorted(entity_ids)), "entity_scope", entity_type or None


def to_trigger(
    w: WindowState, date_field: str = DEFAULT_DATE_FIELD, fired_at: datetime | None = None
) -> Trigger:
    """The trigger a window fires (``fired_at``: when the driver stamps it, else None);
    ``date_field``: the registry's key of the date on the wire."""
    caused = tuple(w.caused_by)  # sorted, unique
    scope, ids, reason, etype = trigger_scope(w.entity_ids, w.date_reason, w.entity_type)
    # every field is built here from typed window state: no second validation
    # (tests/planner/test_trigger_construct.py checks it equals Trigger(...))
    tid = trigger_id(w.processor, w.day, scope, ids, caused, w.caused_by.more)
    return window_trigger(
        tid, w.processor, w.day, scope, etype, ids, reason, caused, w.caused_by.more,
        w.correlation_id, w.priority, fired_at, date_field,
    )  # fmt: skip


# fmt: off
def window_trigger(
    tid: str, processor: str, day: date, scope: str, etype: str | None,
    ids: tuple[str, ...] | None, reason: str | None, caused: tuple[str, ...], more: int,
    correlation_id: str | None, priority: str, fired_at: datetime | None, date_field: str,
) -> Trigger:
    # fmt: on
    """The trigger of a one-day window from fields already checked (no second validation;
    tests/planner/test_trigger_construct.py checks it equals ``Trigger(...)``)."""
    return unchecked(
        Trigger,
        {
            "trigger_id": tid,
            "processor": processor,
            "game_date": day,
            "start_date": day,
            "end_date": day,
            "scope": scope,
            "entity_type": etype,
            "entity_ids": ids,
            "reason": reason,
            "caused_by": caused,
            "caused_by_more": more,
            "correlation_id": correlation_id,
            "priority": priority,
            "fired_at": fired_at,
            "date_field": date_field,
        },
    )


# ---------------------------------------------------------------------- persistence
def window_to_json(w: WindowState) -> dict[str, Any]:
    """The window as one JSON object (the snapshot's item; a store's row)."""
    return {
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


def window_from_json(item: Mapping[str, Any], params: WindowParams) -> WindowState:
    """The inverse of :func:`window_to_json`. Durations and threshold come from ``params``
    (the registry now: a changed registry applies to restored windows). Raises ValueError
    on a malformed item."""
    try:
        day = date.fromisoformat(item["date"])
        reason = item.get("date_reason")
        if reason is not None and reason not in REASON_ORDER:
            raise ValueError(f"unknown reason {reason!r}")
        ids = item.get("entity_ids")
        opened = float(item["opened_at"])
        return WindowState(
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
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed window: {exc}") from exc


def transition_table_markdown() -> str:
    """:data:`TRANSITIONS` as the Markdown table ``docs/engine.md`` embeds (a test checks
    that the page and the code agree)."""
    lines = ["| window | input | becomes | effect | rule |", "|---|---|---|---|---|"]
    for (phase, inp), tr in TRANSITIONS.items():
        lines.append(f"| {phase} | {inp} | {tr.next} | {tr.effect} | {tr.rule} |")
    return "\n".join(lines)
