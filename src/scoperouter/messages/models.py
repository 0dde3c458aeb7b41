"""Canonical event and trigger models (SPEC section 3).

``Event`` is what the planner consumes, after normalisation of every legacy shape
(see :mod:`scoperouter.messages.normalize`). ``Trigger`` is what a processor receives.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["success", "partial", "no_data", "failed"]
Priority = Literal["normal", "critical"]
Scope = Literal["entities", "date"]


class Event(BaseModel):
    """A normalised completion event.

    ``affected_entities`` keeps the keys as the producer wrote them (``players`` or
    ``player``); the planner resolves them against the registry's entity types. Ids are
    deduplicated and sorted. ``None`` means the event names no entities (full date).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1)
    source: str = Field(
        min_length=1, description="Full source name, e.g. nba_raw.nbac_injury_report."
    )
    game_date: date | None = None
    start_date: date | None = None
    end_date: date | None = None
    status: Status = "success"
    affected_entities: dict[str, tuple[str, ...]] | None = None
    changed_fields: tuple[str, ...] | None = None
    priority: Priority = "normal"
    correlation_id: str | None = None
    produced_at: datetime | None = None
    skip_downstream: bool = False
    record_count: int | None = None
    shape: str = Field(default="canonical", description="Which input shape this came from.")

    @property
    def is_backfill(self) -> bool:
        return self.game_date is None and self.start_date is not None and self.end_date is not None

    def dates(self) -> tuple[date, ...]:
        """The event's own dates: game_date, or every date of a backfill range."""
        if self.game_date is not None:
            return (self.game_date,)
        if self.start_date is not None and self.end_date is not None:
            n = (self.end_date - self.start_date).days
            return tuple(self.start_date + timedelta(days=i) for i in range(n + 1))
        return ()


class Trigger(BaseModel):
    """What a processor receives (SPEC section 3)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger_id: str
    processor: str
    game_date: date
    start_date: date
    end_date: date
    scope: Scope
    entity_type: str | None = None
    entity_ids: tuple[str, ...] | None = None
    reason: str
    caused_by: tuple[str, ...] = ()
    correlation_id: str | None = None
    priority: Priority = "normal"
    fired_at: datetime | None = None
