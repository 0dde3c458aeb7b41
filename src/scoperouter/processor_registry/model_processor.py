"""Registry models of a processor (``processors:`` and ``defaults:``): its inputs, lookback,
coalescing window, lineage, and the settings it inherits from ``defaults``.

Invariant: frozen and strict like every registry model; a processor setting that
``defaults`` also holds is None here when routes.yaml leaves it out -- these models never
merge the two, the code that uses a setting resolves it against ``defaults``. Every name is
re-exported by :mod:`scoperouter.processor_registry.models`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from .model_base import (
    Duration,
    FieldName,
    Identifier,
    IgnoredTable,
    PositiveInt,
    PositiveInt4,
    SourceName,
    Strict,
    parse_duration,
)
from .model_loop import (
    BARRIER_DESCRIPTION,
    COMPLETION_TIMEOUT_DESCRIPTION,
    RETRY_BACKOFF_DESCRIPTION,
    RUN_RETRIES_DESCRIPTION,
    BarrierSpec,
    NonNegativeInt,
)
from .model_targets import OutboxTargetSpec, TargetSpec


class WindowSpec(Strict):
    """Coalescing window per (processor, date): fires after ``quiet`` without new
    decisions, or ``max_wait`` after it opened."""

    quiet: Duration = Field(
        default="30s",
        description="Fire after this long without a new decision. Default 30s, also in a "
        "processor's window that leaves it out (that window replaces defaults.window whole).",
    )
    max_wait: Duration = Field(
        default="2m",
        description="Fire at the latest this long after the window opened (>= quiet). "
        "Default 2m, also in a processor's window that leaves it out (that window replaces "
        "defaults.window whole).",
    )

    @model_validator(mode="after")
    def _order(self) -> WindowSpec:
        if parse_duration(self.max_wait) < parse_duration(self.quiet):
            raise ValueError(
                f"max_wait ({self.max_wait}) must not be shorter than quiet ({self.quiet})"
            )
        return self


class AheadSpec(Strict):
    """Rows dated after the event: an event dated D changed rows dated D..D+N."""

    days: Annotated[StrictInt, Field(ge=1, le=366)] = Field(
        description="N: the event's rows are dated D..D+N; runs also cover D+1..D+N."
    )


class InputSpec(Strict):
    """One input of a processor."""

    source: SourceName = Field(
        description="The source whose completion events make this processor a candidate."
    )
    fields: tuple[FieldName, ...] | None = Field(
        default=None,
        description="Run only when a changed field is in this list (an event without "
        "changed_fields is relevant).",
    )
    ignore_fields: tuple[FieldName, ...] | None = Field(
        default=None,
        description="Skip only when every changed field is in this list (not with fields).",
    )
    map: dict[Identifier, tuple[Identifier, ...]] | None = Field(
        default=None,
        description="Relation path per event entity type, e.g. {game: [game_teams, "
        "team_players]}; beats the single-relation rule, loses to identity.",
    )
    also_map: dict[Identifier, tuple[Identifier, ...]] | None = Field(
        default=None,
        description="Relation path per event entity type whose result is ALSO scoped, "
        "united with the normal mapping (identity, map or the single relation), e.g. "
        "{player: [player_team, team_players]}: an event naming a player also reaches his "
        "teammates (an extension of SPEC).",
    )
    ahead: AheadSpec | None = Field(
        default=None,
        description="The rows of this source that the processor reads are dated up to N "
        "days after the event's date (an injury report dated D lists the games of D+1, "
        "read by their game_date): a run also covers D+1..D+N, past the as-of cap, each "
        "with the processor's lookback (an extension of SPEC).",
    )

    @field_validator("fields")
    @classmethod
    def _fields_not_empty(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise ValueError(
                "'fields: []' names no field: every event listing its changed fields would "
                "skip this input (irrelevant_fields); list the relevant fields, or remove "
                "'fields' to run on every change"
            )
        return v

    @model_validator(mode="after")
    def _fields_xor(self) -> InputSpec:
        if self.fields is not None and self.ignore_fields is not None:
            raise ValueError("an input has either 'fields' or 'ignore_fields', not both")
        return self


class LookbackSpec(Strict):
    """A change on date D also reaches later dates whose window contains D.

    ``days: N`` reaches D+1..D+N (N+1 dates with D). ``occurrences: N`` reaches each
    entity's next N dates on which the ``via`` relation has a row for it (its next N games,
    store visits...). ``games`` is an alias of ``occurrences``.
    """

    days: PositiveInt | None = Field(
        default=None, description="Calendar days after D: D+1..D+N are added to D."
    )
    occurrences: PositiveInt | None = Field(
        default=None,
        description="Each entity's next N dates with a row in the 'via' relation.",
    )
    games: PositiveInt | None = Field(
        default=None, description="Alias of occurrences (kept for existing registries)."
    )
    via: Identifier | None = Field(
        default=None,
        description="Relation from the processor's granularity whose dated rows are the "
        "occurrences (e.g. player_games); required with occurrences.",
    )

    @property
    def count(self) -> int | None:
        """N of an occurrences lookback (``occurrences`` or its alias ``games``)."""
        return self.occurrences if self.occurrences is not None else self.games

    @model_validator(mode="after")
    def _one(self) -> LookbackSpec:
        given = [k for k in ("days", "occurrences", "games") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "lookback has exactly one of 'days' or 'occurrences' ('games' is an alias)"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.count is not None and self.via is None:
            raise ValueError(
                f"lookback by '{given[0]}' needs 'via' (the relation whose dated rows count)"
            )
        if self.days is not None and self.via is not None:
            raise ValueError("'via' only applies to lookback by 'occurrences'")
        return self


MAX_ENTITIES_DESCRIPTION = (
    "Most ids (after mapping and uniting) still run at entity scope; more run the full "
    "date (reason fallback_threshold). Inclusive."
)


MODE_DESCRIPTION = (
    "live: dispatch triggers to the target. shadow: plan, coalesce and log every trigger "
    "exactly as live, but call no target (dispatch_status 'shadow'); for measuring beside "
    "the existing pipeline before switching it over."
)

Mode = Literal["live", "shadow"]


class DefaultsSpec(Strict):
    """Settings every processor inherits unless it sets its own."""

    max_entities: PositiveInt4 = Field(default=100, description=MAX_ENTITIES_DESCRIPTION)
    window: WindowSpec = Field(
        default=WindowSpec(), description="Coalescing window per (processor, date)."
    )
    target: TargetSpec = Field(
        default=TargetSpec(outbox=OutboxTargetSpec()),
        description="Where triggers go when a processor names no target.",
    )
    mode: Mode = Field(default="live", description=MODE_DESCRIPTION + " Default: live.")
    run_retries: NonNegativeInt = Field(default=0, description=RUN_RETRIES_DESCRIPTION)
    retry_backoff: Duration = Field(default="30s", description=RETRY_BACKOFF_DESCRIPTION)
    completion_timeout: Duration | None = Field(
        default=None, description=COMPLETION_TIMEOUT_DESCRIPTION
    )
    barrier: BarrierSpec | None = Field(
        default=None, description=BARRIER_DESCRIPTION + " Unset: no barrier."
    )


class LineageSpec(Strict):
    """Where ``scoperouter lineage`` finds what a processor reads."""

    code: tuple[str, ...] = Field(
        default=(),
        description="Globs, relative to routes.yaml, of the processor's SQL files (.sql) or "
        "Python sources (.py) whose SQL string literals lineage parses.",
        examples=[["pipeline/processors/orders/*.py"]],
    )
    ignore_tables: tuple[IgnoredTable, ...] = Field(
        default=(),
        description="Tables it reads on purpose without routing on them (reference data, "
        "its own bookkeeping): no missing_input for them. Never one of its inputs. An entry "
        "ending in * (ds.events_*) covers every table whose name starts with what precedes "
        "it (a wildcard table's shards).",
    )
    partial_code: bool = Field(
        default=False,
        description="The code globs are not all the code the processor runs (a reference "
        "model of production's code): an ignore_tables entry they never read is a read of "
        "the code outside them, not a stale entry (no unused_ignore).",
    )


class ProcessorSpec(Strict):
    """One processor: what it reads, at which granularity, where its triggers go."""

    phase: Annotated[StrictInt, Field(ge=1, le=99)] = Field(
        description="Pipeline phase (1-99): orders graph columns and phase_order warnings."
    )
    granularity: Identifier = Field(description="An entity type, or 'date' (never entity-level).")
    inputs: tuple[InputSpec, ...] = Field(
        min_length=1, description="The sources it reads (each listed once)."
    )
    publishes: SourceName | None = Field(
        default=None,
        description="The source its own completion events carry (an edge of the DAG).",
    )
    max_entities: PositiveInt4 | None = Field(
        default=None, description=MAX_ENTITIES_DESCRIPTION + " Default: defaults.max_entities."
    )
    lookback: LookbackSpec | None = Field(
        default=None, description="Later dates a change on D also reaches."
    )
    window: WindowSpec | None = Field(
        default=None,
        description="Coalescing window; default: defaults.window. Replaces it whole: a key "
        "left out takes the built-in default (quiet 30s, max_wait 2m), not defaults.window's.",
    )
    target: TargetSpec | None = Field(
        default=None, description="Where its triggers go; default: defaults.target."
    )
    mode: Mode | None = Field(
        default=None, description=MODE_DESCRIPTION + " Default: defaults.mode."
    )
    run_retries: NonNegativeInt | None = Field(
        default=None, description=RUN_RETRIES_DESCRIPTION + " Default: defaults.run_retries."
    )
    retry_backoff: Duration | None = Field(
        default=None, description=RETRY_BACKOFF_DESCRIPTION + " Default: defaults.retry_backoff."
    )
    completion_timeout: Duration | None = Field(
        default=None,
        description=COMPLETION_TIMEOUT_DESCRIPTION + " Default: defaults.completion_timeout.",
    )
    barrier: BarrierSpec | None = Field(
        default=None, description=BARRIER_DESCRIPTION + " Default: defaults.barrier."
    )
    description: str | None = Field(default=None, description="Free text for readers.")
    lineage: LineageSpec | None = Field(
        default=None, description="Where scoperouter lineage finds the code of this processor."
    )
    engineering_hours: Annotated[StrictFloat, Field(ge=0)] | None = Field(
        default=None, description="Estimated one-off cost to make it entity-level (report)."
    )
