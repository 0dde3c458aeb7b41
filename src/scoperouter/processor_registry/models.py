"""Pydantic models of ``routes.yaml`` (SPEC section 2). Frozen and strict.

These models are the single source of truth for the registry format: the JSON Schema in
``schemas/routes.schema.json`` is generated from them (``scoperouter schema``).
Cross-field checks that need the whole document (unknown relations, map paths that do not
chain, cycles...) live in :mod:`scoperouter.processor_registry.semantic`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

# The pattern goes into the JSON Schema: keep it ECMA-262 compatible (no Python named groups).
DURATION_PATTERN = r"^[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)$"
DURATION_RE = re.compile(r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        description="A duration such as 0s, 30s, 2m, 1h (units: ms, s, m, h, d).",
        examples=["30s", "2m"],
    ),
]
Identifier = Annotated[
    str,
    Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="A name: letters, digits, underscore."),
]
SourceName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*$",
        description="A source (usually dataset.table), e.g. nba_raw.nbac_injury_report.",
    ),
]
PositiveInt = Annotated[StrictInt, Field(gt=0)]


def parse_duration(text: str) -> float:
    """Seconds in a duration string (``30s`` -> 30.0). Raises ValueError on bad input."""
    m = DURATION_RE.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 0s, 30s, 2m, 1h")
    return float(m.group("n")) * _UNIT_SECONDS[m.group("unit")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class EntityTypeSpec(Strict):
    """An entity type. Events may name it singular (``player``) or plural (``players``)."""

    description: str | None = None


class RelationSpec(Strict):
    """How a change to one entity reaches another, per date.

    Either ``from``/``to`` (rows come from relation data) or ``inverse_of`` (the rows of
    another relation, reversed).
    """

    from_: Identifier | None = Field(default=None, alias="from")
    to: Identifier | None = None
    inverse_of: Identifier | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> RelationSpec:
        if self.inverse_of is not None:
            if self.from_ is not None or self.to is not None:
                raise ValueError("a relation has either from/to or inverse_of, not both")
        elif self.from_ is None or self.to is None:
            raise ValueError("a relation needs both 'from' and 'to' (or 'inverse_of')")
        return self


class CsvRelationData(Strict):
    """``<dir>/<relation>.csv`` with header ``date,from,to`` (empty date = every date).

    A relative ``dir`` is resolved against the directory of ``routes.yaml``.
    """

    dir: str = Field(min_length=1)


class RelationDataSpec(Strict):
    csv: CsvRelationData


class WindowSpec(Strict):
    """Coalescing window per (processor, date): fires after ``quiet`` without new
    decisions, or ``max_wait`` after it opened."""

    quiet: Duration = "30s"
    max_wait: Duration = "2m"

    @model_validator(mode="after")
    def _order(self) -> WindowSpec:
        if parse_duration(self.max_wait) < parse_duration(self.quiet):
            raise ValueError(
                f"max_wait ({self.max_wait}) must not be shorter than quiet ({self.quiet})"
            )
        return self


class PubSubTargetSpec(Strict):
    topic: str = Field(min_length=1, description="Topic id or projects/P/topics/T; ${ENV} allowed.")
    project: str | None = Field(default=None, description="GCP project; ${ENV} allowed.")
    ordering: bool = Field(default=True, description="Use an ordering key per processor and date.")


class HttpTargetSpec(Strict):
    url: str = Field(min_length=1, description="http(s) URL receiving the Pub/Sub push envelope.")
    timeout: Duration = "60s"
    audience: str | None = Field(default=None, description="OIDC audience for an identity token.")


class OutboxTargetSpec(Strict):
    path: str | None = Field(
        default=None, description="JSONL file; default <state-dir>/outbox.jsonl."
    )


class TargetSpec(Strict):
    """Exactly one of ``pubsub``, ``http``, ``outbox``."""

    pubsub: PubSubTargetSpec | None = None
    http: HttpTargetSpec | None = None
    outbox: OutboxTargetSpec | None = None
    max_attempts: PositiveInt = 5
    concurrency: PositiveInt = 4

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        kinds = [k for k in ("pubsub", "http", "outbox") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a target names exactly one of pubsub, http, outbox"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        return self

    @property
    def kind(self) -> Literal["pubsub", "http", "outbox"]:
        if self.pubsub is not None:
            return "pubsub"
        if self.http is not None:
            return "http"
        return "outbox"


class InputSpec(Strict):
    """One input of a processor."""

    source: SourceName
    fields: tuple[str, ...] | None = Field(
        default=None, description="Run only when a changed field is in this list."
    )
    ignore_fields: tuple[str, ...] | None = Field(
        default=None, description="Skip when every changed field is in this list."
    )
    map: dict[Identifier, tuple[Identifier, ...]] | None = Field(
        default=None,
        description="Relation path per event entity type, e.g. {game: [game_teams, team_players]}.",
    )

    @model_validator(mode="after")
    def _fields_xor(self) -> InputSpec:
        if self.fields is not None and self.ignore_fields is not None:
            raise ValueError("an input has either 'fields' or 'ignore_fields', not both")
        return self


class LookbackSpec(Strict):
    """A change on date D also reaches later dates whose window contains D."""

    days: PositiveInt | None = None
    games: PositiveInt | None = None
    via: Identifier | None = Field(
        default=None, description="Relation from the granularity to games (dated rows)."
    )

    @model_validator(mode="after")
    def _one(self) -> LookbackSpec:
        if (self.days is None) == (self.games is None):
            raise ValueError("lookback has exactly one of 'days' or 'games'")
        if self.games is not None and self.via is None:
            raise ValueError("lookback by 'games' needs 'via' (a relation to games)")
        if self.days is not None and self.via is not None:
            raise ValueError("'via' only applies to lookback by 'games'")
        return self


class DefaultsSpec(Strict):
    max_entities: PositiveInt = 100
    window: WindowSpec = WindowSpec()
    target: TargetSpec = TargetSpec(outbox=OutboxTargetSpec())


class ProcessorSpec(Strict):
    phase: Annotated[StrictInt, Field(ge=1, le=99)]
    granularity: Identifier = Field(description="An entity type, or 'date' (never entity-level).")
    inputs: tuple[InputSpec, ...] = Field(min_length=1)
    publishes: SourceName | None = None
    max_entities: PositiveInt | None = None
    lookback: LookbackSpec | None = None
    window: WindowSpec | None = None
    target: TargetSpec | None = None
    description: str | None = None
    engineering_hours: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Estimated one-off cost to make it entity-level (report)."
    )


class ReportSpec(Strict):
    """Thresholds of the recommendation rule used by ``scoperouter report``."""

    waste_pct: Annotated[float, Field(ge=0, le=100)] = 30.0
    wasted_hours_per_week: Annotated[float, Field(ge=0)] = 2.0
    payback_weeks: Annotated[float, Field(gt=0)] = 8.0
    engineering_hours: Annotated[float, Field(ge=0)] = 16.0
    seconds_per_entity: Annotated[float, Field(gt=0)] | None = None


class OidcAuthSpec(Strict):
    """Push-endpoint auth by Google-signed OIDC identity token (Pub/Sub push auth)."""

    audience: str = Field(min_length=1, description="Expected token audience; ${ENV} allowed.")
    service_account: str | None = Field(
        default=None, description="Expected token email (the push subscription's service account)."
    )


class AuthSpec(Strict):
    """Exactly one of ``bearer_token`` (shared secret) or ``oidc``."""

    bearer_token: str | None = Field(
        default=None, min_length=1, description="Shared token; use ${ENV}."
    )
    oidc: OidcAuthSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AuthSpec:
        if (self.bearer_token is None) == (self.oidc is None):
            raise ValueError("auth names exactly one of bearer_token, oidc")
        return self


class ServerSpec(Strict):
    """Settings of ``scoperouter serve`` (CLI flags override)."""

    auth: AuthSpec | None = None
    max_body_bytes: PositiveInt = 1_048_576
    dedup_horizon: Duration = "24h"
    dead_letter_topic: str | None = Field(
        default=None, description="Optional Pub/Sub topic receiving dead letters; ${ENV} allowed."
    )
    header_timeout: Duration = Field(
        default="10s",
        description="Close a connection that has not sent a complete request head within "
        "this time (slow clients); also the keep-alive idle timeout.",
    )
    body_timeout: Duration = Field(
        default="30s", description="Answer 408 when a request body takes longer to arrive."
    )
    max_connections: PositiveInt = Field(
        default=1000,
        description="Open connections beyond which /events answers 503 (health checks pass).",
    )
    listen_backlog: PositiveInt = Field(
        default=2048, description="The listening socket's accept backlog."
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
        description="The column that holds the entity id (e.g. player_lookup).",
    )
    columns: tuple[str, ...] | None = Field(
        default=None,
        description="The source's columns; validate checks fields and ignore_fields "
        "against them.",
    )
    description: str | None = Field(default=None, description="Free text for humans.")


class RoutesSpec(Strict):
    """The whole ``routes.yaml``."""

    version: Literal[1]
    entities: dict[Identifier, EntityTypeSpec] = Field(default_factory=dict)
    relations: dict[Identifier, RelationSpec] = Field(default_factory=dict)
    relation_data: RelationDataSpec | None = None
    sources: dict[SourceName, SourceSpec] = Field(
        default_factory=dict,
        description="Optional per-source declarations: entity type and columns.",
    )
    defaults: DefaultsSpec = DefaultsSpec()
    processors: dict[Identifier, ProcessorSpec] = Field(min_length=1)
    report: ReportSpec = ReportSpec()
    server: ServerSpec | None = None
