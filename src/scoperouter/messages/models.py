"""Canonical event and trigger models (SPEC section 3).

``Event`` is what the planner consumes, after normalisation of every legacy shape
(see :mod:`scoperouter.messages.normalize`). ``Trigger`` is what a processor receives.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scoperouter.field_names import changed_field_names

Status = Literal["success", "partial", "no_data", "failed"]
Priority = Literal["normal", "critical"]
Scope = Literal["entities", "date"]
# the registry's default date_field: the key of the date in events and triggers
DEFAULT_DATE_FIELD = "game_date"


class Event(BaseModel):
    """A normalised completion event.

    ``affected_entities`` keeps the keys as the producer wrote them (``players`` or
    ``player``); the planner resolves them against the registry's entity types. Ids are
    deduplicated and sorted. ``None`` means the event names no entities (full date).

    ``changed_fields`` holds the names as compared (:mod:`scoperouter.field_names`: stripped,
    lower-case, deduplicated, sorted; ``()`` when one was blank), however the event was
    built -- normalised, or read back from a journal or an execution log written before
    names were folded. ``None``: the event has no changed-fields list (unknown, relevant).
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
    referenced_tables: tuple[str, ...] | None = Field(
        default=None,
        description="Tables the run read (its BigQuery jobs' referenced_tables), for drift.",
    )
    shape: str = Field(default="canonical", description="Which input shape this came from.")

    @field_validator("changed_fields")
    @classmethod
    def _fold_changed_fields(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else changed_field_names(v)

    @property
    def is_backfill(self) -> bool:
        return self.game_date is None and self.start_date is not None and self.end_date is not None

    def dates(self) -> tuple[date, ...]:
        """The event's own dates, sorted: game_date and every date of its range (a backfill
        has the range alone; a game date with a range runs both:
        :mod:`scoperouter.router.event_range`)."""
        days: tuple[date, ...] = ()
        if self.start_date is not None and self.end_date is not None:
            n = (self.end_date - self.start_date).days
            days = tuple(self.start_date + timedelta(days=i) for i in range(n + 1))
        if self.game_date is None:
            return days
        if not days:
            return (self.game_date,)
        return tuple(sorted({self.game_date, *days}))


BACKFILL_TRIGGER_PREFIX = "bf-"
"""How the id of a trigger a backfill sends begins (``scoperouter.backfill``); the
completion event naming one routes nothing (:func:`scoperouter.runtime.intake.backfill_completion`)."""


class Trigger(BaseModel):
    """What a processor receives (SPEC section 3).

    On the wire (:meth:`wire`) the date is keyed by the registry's ``date_field``
    (``game_date`` by default, e.g. ``business_date``), next to ``start_date``/``end_date``;
    a trigger keyed otherwise also names the key in ``date_field`` so that it reads back.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger_id: str = Field(
        description="Deterministic id of this trigger; use it as an idempotency key."
    )
    processor: str = Field(description="The processor to run.")
    game_date: date = Field(
        description="The date to process, keyed by the registry's date_field (default game_date)."
    )
    start_date: date = Field(description="Equal to the date: today's processors read it.")
    end_date: date = Field(description="Equal to the date (inclusive).")
    scope: Scope = Field(
        description="entities: process entity_ids only; date: process the whole date."
    )
    entity_type: str | None = Field(
        default=None, description="The processor's granularity (entity scope only)."
    )
    entity_ids: tuple[str, ...] | None = Field(
        default=None, description="Sorted ids to process (entity scope only)."
    )
    reason: str = Field(description="Reason code of the scope, e.g. entity_scope.")
    caused_by: tuple[str, ...] = Field(
        default=(), description="Event ids merged into this trigger (at most 1000)."
    )
    caused_by_more: int = Field(
        default=0,
        ge=0,
        exclude=True,  # on the wire only when not 0 (wire): the SPEC shape otherwise
        description="How many more events were merged beyond the ids listed (absent when 0).",
    )
    correlation_id: str | None = Field(
        default=None, description="The first correlation id seen among those events."
    )
    priority: Priority = Field(
        default="normal", description="critical when any of those events was."
    )
    fired_at: datetime | None = Field(default=None, description="When the window fired.")
    date_field: str = Field(
        default=DEFAULT_DATE_FIELD,
        exclude=True,
        description="The key of the date on the wire (the registry's date_field).",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_date_field(cls, data: Any) -> Any:
        """Read back a wire trigger whose date is keyed by ``date_field``."""
        if isinstance(data, dict):
            key = data.get("date_field")
            if isinstance(key, str) and key != DEFAULT_DATE_FIELD and key in data:
                data = dict(data)
                data[DEFAULT_DATE_FIELD] = data.pop(key)
        return data

    def wire(self) -> dict[str, Any]:
        """The JSON object a processor receives: dates ISO, lists not tuples, the date
        under ``date_field``."""
        data: dict[str, Any] = self.model_dump(mode="json")
        if self.caused_by_more:  # a hot window's capped caused_by
            data["caused_by_more"] = self.caused_by_more
        if self.date_field != DEFAULT_DATE_FIELD:
            data = {(self.date_field if k == DEFAULT_DATE_FIELD else k): v for k, v in data.items()}
            data["date_field"] = self.date_field
        return data
