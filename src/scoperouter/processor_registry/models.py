"""Pydantic models of ``routes.yaml`` (SPEC section 2). Frozen and strict.

Invariant: every model derives from :class:`Strict` (frozen, unknown keys rejected), and
every public name of the format stays importable from here (listed in ``__all__``),
whichever ``model_*`` module defines it: processors and defaults in :mod:`model_processor`,
targets in :mod:`model_targets`, ``server:`` in :mod:`model_server`, the closed loop in
:mod:`model_loop`, shared scalar types in :mod:`model_base`.

These models are the single source of truth for the registry format: the JSON Schema in
``schemas/routes.schema.json`` is generated from them (``scoperouter schema``).
Cross-field checks that need the whole document (unknown relations, map paths that do not
chain, cycles...) live in :mod:`scoperouter.processor_registry.semantic`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictFloat, model_validator

from .model_base import (  # re-exported: the format's public names
    DURATION_PATTERN,
    DURATION_RE,
    WARNING_CODES,
    Duration,
    Identifier,
    PositiveInt,
    SourceName,
    Strict,
    WarningCode,
    parse_duration,
    parse_seconds,
)
from .model_loop import BarrierSpec, MinCompleteSpec
from .model_processor import (
    MAX_ENTITIES_DESCRIPTION,
    MODE_DESCRIPTION,
    DefaultsSpec,
    InputSpec,
    LineageSpec,
    LookbackSpec,
    Mode,
    ProcessorSpec,
    WindowSpec,
)
from .model_server import AuthSpec, OidcAuthSpec, ServerSpec
from .model_targets import (
    HeaderName,
    HttpTargetSpec,
    MappingSpec,
    OutboxTargetSpec,
    PubSubTargetSpec,
    TargetFormat,
    TargetSpec,
)

__all__ = [
    "DURATION_PATTERN",
    "DURATION_RE",
    "MAX_ENTITIES_DESCRIPTION",
    "MODE_DESCRIPTION",
    "WARNING_CODES",
    "AuthSpec",
    "BarrierSpec",
    "CsvRelationData",
    "DefaultsSpec",
    "Duration",
    "EntityTypeSpec",
    "HeaderName",
    "HttpTargetSpec",
    "Identifier",
    "InputSpec",
    "LineageSpec",
    "LookbackSpec",
    "MappingSpec",
    "MinCompleteSpec",
    "Mode",
    "OidcAuthSpec",
    "OutboxTargetSpec",
    "PositiveInt",
    "ProcessorSpec",
    "PubSubTargetSpec",
    "RelationDataSpec",
    "RelationSpec",
    "ReportSpec",
    "RoutesSpec",
    "ServerSpec",
    "SourceName",
    "SourceSpec",
    "Strict",
    "TargetFormat",
    "TargetSpec",
    "ValidateSpec",
    "WarningCode",
    "WindowSpec",
    "parse_duration",
    "parse_seconds",
]


class EntityTypeSpec(Strict):
    """An entity type. Events may name it singular (``player``) or plural (``players``)."""

    plural: Identifier | None = Field(
        default=None,
        description="The key events use for several ids of this type, e.g. people for "
        "person. Default: the name plus 's'. The singular name is always accepted too.",
        examples=["people"],
    )
    description: str | None = Field(default=None, description="Free text for readers.")


class RelationSpec(Strict):
    """How a change to one entity reaches another, per date.

    Either ``from``/``to`` (rows come from relation data) or ``inverse_of`` (the rows of
    another relation, reversed). ``every_day`` (with ``from``/``to`` only; an inverse
    inherits its base's): the dated rows are a daily snapshot, so a date inside their span
    with no dated row is not loaded (unknown), not a day that relates nobody.
    """

    from_: Identifier | None = Field(
        default=None,
        alias="from",
        description="Entity type the change starts from (with 'to'; rows in relation data).",
    )
    to: Identifier | None = Field(
        default=None, description="Entity type the change reaches (with 'from')."
    )
    inverse_of: Identifier | None = Field(
        default=None,
        description="Another relation (with from/to) whose rows, reversed, are this "
        "relation's rows; it has no file of its own.",
    )
    every_day: StrictBool = Field(
        default=False,
        description="The dated rows are a daily snapshot (a roster) with rows on every date "
        "from the first dated date to the last: a date inside that span with no dated row is "
        "not loaded (unknown, the full date), not a day that relates nobody (a schedule's day "
        "without games, the default). With from/to only: an inverse_of relation inherits it.",
    )
    description: str | None = Field(default=None, description="Free text for readers.")

    @model_validator(mode="after")
    def _one_form(self) -> RelationSpec:
        if self.inverse_of is not None:
            if self.from_ is not None or self.to is not None:
                raise ValueError("a relation has either from/to or inverse_of, not both")
            # true only: false is the default (a dumped and re-read registry carries it, as
            # --what-if does) and the inverse inherits its base's either way
            if self.every_day:
                raise ValueError(
                    "every_day is inherited from the relation an inverse_of names: "
                    f"set it on {self.inverse_of!r}"
                )
        elif self.from_ is None or self.to is None:
            raise ValueError("a relation needs both 'from' and 'to' (or 'inverse_of')")
        return self


class CsvRelationData(Strict):
    """``<dir>/<relation>.csv`` with header ``date,from,to`` (empty date = every date).

    A relative ``dir`` is resolved against the directory of ``routes.yaml``.
    """

    dir: str = Field(
        min_length=1,
        description="Directory holding <relation>.csv per relation with from/to, header "
        "date,from,to; relative to the directory of routes.yaml.",
    )
    ready_file: str | None = Field(
        default=None,
        min_length=1,
        description="A file in dir that the job writing the CSVs touches once all of them "
        "are in place: serve then reloads when it changes, never on a CSV alone (no half-old, "
        "half-new relations while files are replaced one by one). Default: reload on any CSV.",
    )


class RelationDataSpec(Strict):
    """Where relation rows come from (required when any relation is used)."""

    csv: CsvRelationData = Field(description="Relation rows from CSV files.")


class ReportSpec(Strict):
    """Thresholds of the recommendation rule used by ``scoperouter report``."""

    waste_pct: Annotated[StrictFloat, Field(ge=0, le=100)] = Field(
        default=30.0, description="Recommend entity-level above this average waste (%)."
    )
    wasted_hours_per_week: Annotated[StrictFloat, Field(ge=0)] = Field(
        default=2.0, description="... and above this many wasted hours a week."
    )
    payback_weeks: Annotated[StrictFloat, Field(gt=0)] = Field(
        default=8.0, description="... and when the engineering hours pay back within this."
    )
    engineering_hours: Annotated[StrictFloat, Field(ge=0)] = Field(
        default=16.0,
        description="One-off cost of making a processor entity-level, unless it sets its own.",
    )
    seconds_per_entity: Annotated[StrictFloat, Field(gt=0)] | None = Field(
        default=None,
        description="Cost per entity when the log has too few completions to fit one.",
    )
    shadow_days: PositiveInt = Field(
        default=14,
        description="Days a processor must be observed (in shadow) before the report says "
        "go for moving it live.",
    )


class SourceSpec(Strict):
    """What the registry knows about one source (a table): its entity and its columns.

    Optional. ``entity`` types the flat ``entities_changed`` lists its events carry (for
    sources no processor publishes, e.g. raw tables); ``columns`` lets ``validate`` check
    every ``fields`` / ``ignore_fields`` name of the inputs that read it.
    """

    entity: Identifier | None = Field(
        default=None,
        description="Entity type of this source's events: a flat entities_changed list "
        "carries ids of this type. Must be a declared entity type.",
    )
    entity_key: str | None = Field(
        default=None,
        min_length=1,
        description="The column that holds the entity id (e.g. customer_id).",
    )
    columns: tuple[str, ...] | None = Field(
        default=None,
        description="The source's columns; validate checks fields and ignore_fields against them.",
    )
    keys: tuple[str, ...] = Field(
        default=(),
        description="Columns that identify a row and never change (besides entity_key and the "
        "date field): no change event names them, so lineage lets a processor read them "
        "whatever its fields say.",
    )
    description: str | None = Field(default=None, description="Free text for humans.")


class ValidateSpec(Strict):
    """Settings of ``scoperouter validate`` kept with the registry."""

    ignore: tuple[WarningCode, ...] = Field(
        default=(),
        description="Warning codes silenced everywhere in this file (errors cannot be).",
    )


class RoutesSpec(Strict):
    """The whole ``routes.yaml``."""

    version: Literal[1] = Field(description="Format version; 1.")
    date_field: Identifier = Field(
        default="game_date",
        description="The event key holding the date the data is about; triggers carry "
        "the date under this key as well as start_date/end_date.",
        examples=["business_date"],
    )
    entities: dict[Identifier, EntityTypeSpec] = Field(
        default_factory=dict, description="Entity types, by name (singular)."
    )
    relations: dict[Identifier, RelationSpec] = Field(
        default_factory=dict, description="How a change to one entity reaches another."
    )
    relation_data: RelationDataSpec | None = Field(
        default=None, description="Where relation rows come from."
    )
    sources: dict[SourceName, SourceSpec] = Field(
        default_factory=dict,
        description="Optional per-source declarations: entity type and columns. A source "
        "declared here is never a near_miss_source.",
    )
    defaults: DefaultsSpec = Field(
        default=DefaultsSpec(), description="Settings processors inherit."
    )
    processors: dict[Identifier, ProcessorSpec] = Field(
        min_length=1, description="The processors, by name."
    )
    report: ReportSpec = Field(
        default=ReportSpec(), description="Recommendation thresholds of scoperouter report."
    )
    server: ServerSpec | None = Field(default=None, description="Settings of scoperouter serve.")
    validate_: ValidateSpec = Field(
        default=ValidateSpec(), alias="validate", description="Settings of scoperouter validate."
    )
