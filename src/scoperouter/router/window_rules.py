"""The window rules of SPEC section 2 as one table, :data:`TRANSITIONS`: (phase, input) ->
(next phase, effect, rule).

Invariant: this table is the only statement of the rules --
:func:`.window_state.merge_decision` and the stores' merge read their outcome from it,
``docs/engine.md`` prints it (:func:`transition_table_markdown`) and a test checks that the
page and the code agree; a (phase, input) pair that is absent cannot happen.

Window rules, as a state machine per ``(processor, date)``:

* phases ``closed`` (no window), ``entities`` (an id set), ``date`` (full date);
* inputs: a decision classified by :func:`.window_state.classify` (``skip``, ``entities``,
  ``entities_past_max``, ``entities_other_type``, ``date``), then ``critical`` when the
  event was critical, or a timer input (``quiet_elapsed``, ``max_wait_elapsed``) or
  ``flush``.

An id set has one entity type: ids of another type (a window opened before a restart that
changed the processor's granularity) are never united with it -- the window becomes full
date (``unmapped_entity_type``), so no id goes out labelled with a type it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


def transition_table_markdown() -> str:
    """:data:`TRANSITIONS` as the Markdown table ``docs/engine.md`` embeds (a test checks
    that the page and the code agree)."""
    lines = ["| window | input | becomes | effect | rule |", "|---|---|---|---|---|"]
    for (phase, inp), tr in TRANSITIONS.items():
        lines.append(f"| {phase} | {inp} | {tr.next} | {tr.effect} | {tr.rule} |")
    return "\n".join(lines)
