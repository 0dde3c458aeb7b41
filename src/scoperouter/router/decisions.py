"""Decisions: the planner's output, one per processor per event. Outcomes are values."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

Reason = Literal[
    "unknown_source",
    "not_an_input",
    "upstream_failed",
    "no_data",
    "skip_downstream",
    "irrelevant_fields",
    "backfill",
    "date_granularity",
    "no_entities_in_event",
    "unmapped_entity_type",
    "empty_mapping",
    "fallback_threshold",
    "unknown_relation_date",
    "entity_scope",
]

# Precedence when several reasons apply (SPEC section 2): first wins. unknown_relation_date
# (an extension of SPEC): a later or ahead date of an entity-scope decision that a dated
# relation on its paths does not span (outside its first..last dated date: not loaded
# yet), the full date.
REASON_ORDER: tuple[Reason, ...] = (
    "unknown_source",
    "not_an_input",
    "upstream_failed",
    "no_data",
    "skip_downstream",
    "irrelevant_fields",
    "backfill",
    "date_granularity",
    "no_entities_in_event",
    "unmapped_entity_type",
    "empty_mapping",
    "fallback_threshold",
    "unknown_relation_date",
    "entity_scope",
)
SKIP_REASONS: frozenset[Reason] = frozenset(
    {
        "unknown_source",
        "not_an_input",
        "upstream_failed",
        "no_data",
        "skip_downstream",
        "irrelevant_fields",
    }
)


class Decision(BaseModel):
    """What one processor does about one event. ``explain --json`` prints these fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    processor: str
    action: Literal["run", "skip"]
    scope: Literal["entities", "date"] | None
    entity_type: str | None
    entity_ids: tuple[str, ...] | None
    dates: tuple[date, ...]
    reason: Reason

    def to_json(self) -> dict[str, object]:
        return {
            "processor": self.processor,
            "action": self.action,
            "scope": self.scope,
            "entity_type": self.entity_type,
            "entity_ids": list(self.entity_ids) if self.entity_ids is not None else None,
            "dates": [d.isoformat() for d in self.dates],
            "reason": self.reason,
        }
