"""Pydantic models of ``routes.yaml`` (SPEC section 2). Frozen and strict.

These models are the single source of truth for the registry format: the JSON Schema in
``schemas/routes.schema.json`` is generated from them (``scoperouter schema``).
Cross-field checks that need the whole document (unknown relations, map paths that do not
chain, cycles...) live in :mod:`scoperouter.processor_registry.semantic`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictInt, model_validator

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

# Codes of the warnings ``scoperouter validate`` can print (docs/registry.md lists them).
# Only warnings can be silenced: ``validate --ignore CODE``, ``validate: {ignore: [...]}``
# or a ``# scoperouter: ignore[CODE]`` comment on the reported line.
WarningCode = Literal[
    "unmapped_input",
    "map_ignored",
    "env_unset",
    "duplicate_publishes",
    "similar_source",
    "phase_order",
    "bad_ignore",
]
WARNING_CODES: tuple[str, ...] = get_args(WarningCode)


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
    another relation, reversed).
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
    description: str | None = Field(default=None, description="Free text for readers.")

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

    dir: str = Field(
        min_length=1,
        description="Directory holding <relation>.csv per relation with from/to, header "
        "date,from,to; relative to the directory of routes.yaml.",
    )


class RelationDataSpec(Strict):
    """Where relation rows come from (required when any relation is declared)."""

    csv: CsvRelationData = Field(description="Relation rows from CSV files.")


class WindowSpec(Strict):
    """Coalescing window per (processor, date): fires after ``quiet`` without new
    decisions, or ``max_wait`` after it opened."""

    quiet: Duration = Field(
        default="30s", description="Fire after this long without a new decision."
    )
    max_wait: Duration = Field(
        default="2m",
        description="Fire at the latest this long after the window opened (>= quiet).",
    )

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
    timeout: Duration = Field(default="60s", description="Timeout of one delivery attempt.")
    audience: str | None = Field(default=None, description="OIDC audience for an identity token.")
    retry_on: tuple[Annotated[StrictInt, Field(ge=400, le=499)], ...] = Field(
        default=(),
        description="4xx statuses retried like 408/429/5xx, e.g. 409 from a service that "
        "refuses while a run of the same date is in progress (other 4xx dead-letter).",
    )


class OutboxTargetSpec(Strict):
    path: str | None = Field(
        default=None, description="JSONL file; default <state-dir>/outbox.jsonl."
    )


TargetFormat = Literal["envelope", "trigger", "mapping"]
HeaderName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
        description="An HTTP header name (RFC 9110 token).",
    ),
]


class MappingSpec(Strict):
    """Reshapes the trigger into the JSON (and HTTP headers) a service expects, like an
    input transformer. Templates: ``"$.field"`` reads a trigger field, ``"$"`` the whole
    trigger, ``{"$op": args}`` applies an operator (docs/targets.md lists them); anything
    else is literal (``${ENV}`` interpolated). Checked by ``scoperouter validate``."""

    body: JsonValue = Field(
        description="Template of the JSON the service reads (with envelope: true, the data "
        "of the Pub/Sub push envelope; for a Pub/Sub target, the message data).",
        examples=[{"start_date": "$.start_date", "entities_changed": "$.entity_ids"}],
    )
    headers: dict[HeaderName, JsonValue] | None = Field(
        default=None,
        description="HTTP targets only: header name -> template of a string (a null or "
        "left-out value omits the header); ${ENV} for secrets.",
    )
    envelope: bool = Field(
        default=False,
        description="HTTP targets only: send the body as the data of a Pub/Sub push "
        "envelope (for /process endpoints that decode one) instead of as the request body.",
    )


class TargetSpec(Strict):
    """Exactly one of ``pubsub``, ``http``, ``outbox``."""

    pubsub: PubSubTargetSpec | None = Field(default=None, description="Publish to a topic.")
    http: HttpTargetSpec | None = Field(
        default=None, description="POST the Pub/Sub push envelope to a URL."
    )
    outbox: OutboxTargetSpec | None = Field(
        default=None, description="Append to a local JSONL file (tests, demos, replays)."
    )
    max_attempts: PositiveInt = Field(
        default=5, description="Delivery attempts before the trigger is dead-lettered."
    )
    concurrency: PositiveInt = Field(
        default=4, description="Deliveries in flight at once to this target."
    )
    format: TargetFormat | None = Field(
        default=None,
        description="What is sent: 'envelope' (the SPEC Pub/Sub push envelope; HTTP only, "
        "the HTTP default), 'trigger' (the bare trigger JSON; the Pub/Sub and outbox "
        "default), 'mapping' (the 'mapping' template; implied when 'mapping' is set).",
    )
    mapping: MappingSpec | None = Field(
        default=None, description="The body (and headers) template of format 'mapping'."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        kinds = [k for k in ("pubsub", "http", "outbox") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a target names exactly one of pubsub, http, outbox"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        if self.format == "mapping" and self.mapping is None:
            raise ValueError("format 'mapping' needs a 'mapping' (body and headers)")
        if self.mapping is not None and self.format not in (None, "mapping"):
            raise ValueError(f"'mapping' is set but format is {self.format!r}: drop one")
        return self

    @property
    def effective_format(self) -> TargetFormat:
        """The format in force: explicit, else 'mapping' with a mapping, else the kind's
        default ('envelope' for HTTP, 'trigger' otherwise)."""
        if self.format is not None:
            return self.format
        if self.mapping is not None:
            return "mapping"
        return "envelope" if self.http is not None else "trigger"

    @property
    def kind(self) -> Literal["pubsub", "http", "outbox"]:
        if self.pubsub is not None:
            return "pubsub"
        if self.http is not None:
            return "http"
        return "outbox"


class InputSpec(Strict):
    """One input of a processor."""

    source: SourceName = Field(
        description="The source whose completion events make this processor a candidate."
    )
    fields: tuple[str, ...] | None = Field(
        default=None,
        description="Run only when a changed field is in this list (an event without "
        "changed_fields is relevant).",
    )
    ignore_fields: tuple[str, ...] | None = Field(
        default=None,
        description="Skip only when every changed field is in this list (not with fields).",
    )
    map: dict[Identifier, tuple[Identifier, ...]] | None = Field(
        default=None,
        description="Relation path per event entity type, e.g. {game: [game_teams, "
        "team_players]}; beats the single-relation rule, loses to identity.",
    )

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

    max_entities: PositiveInt = Field(default=100, description=MAX_ENTITIES_DESCRIPTION)
    window: WindowSpec = Field(
        default=WindowSpec(), description="Coalescing window per (processor, date)."
    )
    target: TargetSpec = Field(
        default=TargetSpec(outbox=OutboxTargetSpec()),
        description="Where triggers go when a processor names no target.",
    )
    mode: Mode = Field(default="live", description=MODE_DESCRIPTION + " Default: live.")


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
    max_entities: PositiveInt | None = Field(
        default=None, description=MAX_ENTITIES_DESCRIPTION + " Default: defaults.max_entities."
    )
    lookback: LookbackSpec | None = Field(
        default=None, description="Later dates a change on D also reaches."
    )
    window: WindowSpec | None = Field(
        default=None, description="Coalescing window; default: defaults.window."
    )
    target: TargetSpec | None = Field(
        default=None, description="Where its triggers go; default: defaults.target."
    )
    mode: Mode | None = Field(
        default=None, description=MODE_DESCRIPTION + " Default: defaults.mode."
    )
    description: str | None = Field(default=None, description="Free text for readers.")
    engineering_hours: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Estimated one-off cost to make it entity-level (report)."
    )


class ReportSpec(Strict):
    """Thresholds of the recommendation rule used by ``scoperouter report``."""

    waste_pct: Annotated[float, Field(ge=0, le=100)] = Field(
        default=30.0, description="Recommend entity-level above this average waste (%)."
    )
    wasted_hours_per_week: Annotated[float, Field(ge=0)] = Field(
        default=2.0, description="... and above this many wasted hours a week."
    )
    payback_weeks: Annotated[float, Field(gt=0)] = Field(
        default=8.0, description="... and when the engineering hours pay back within this."
    )
    engineering_hours: Annotated[float, Field(ge=0)] = Field(
        default=16.0,
        description="One-off cost of making a processor entity-level, unless it sets its own.",
    )
    seconds_per_entity: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Cost per entity when the log has too few completions to fit one.",
    )
    shadow_days: PositiveInt = Field(
        default=14,
        description="Days a processor must be observed (in shadow) before the report says "
        "go for moving it live.",
    )


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
    oidc: OidcAuthSpec | None = Field(
        default=None, description="Google-signed OIDC identity tokens."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> AuthSpec:
        if (self.bearer_token is None) == (self.oidc is None):
            raise ValueError("auth names exactly one of bearer_token, oidc")
        return self


_Text = Annotated[str, Field(min_length=1)]


def _opt(description: str) -> Any:  # an optional serve setting: None = not set here
    return Field(default=None, description=description)


class ServerSpec(Strict):
    """Settings of ``scoperouter serve``. Precedence: command line, then environment
    (``SCOPEROUTER_<KEY>``; ``PORT``), then these, then the defaults
    (``scoperouter serve --print-config`` shows the result and where each value came from)."""

    auth: AuthSpec | None = Field(default=None, description="Push auth; none by default.")
    max_body_bytes: PositiveInt = Field(
        default=1_048_576, description="Larger request bodies get HTTP 413."
    )
    dedup_horizon: Duration = Field(
        default="24h", description="A repeated event_id within this horizon is ignored."
    )
    dead_letter_topic: str | None = Field(
        default=None, description="Optional Pub/Sub topic receiving dead letters; ${ENV} allowed."
    )
    state_dir: _Text | None = _opt("SQLite state and outbox (default .scoperouter)")
    host: _Text | None = _opt("HTTP bind address (default 127.0.0.1)")
    port: Annotated[StrictInt, Field(ge=0, le=65535)] | None = _opt("HTTP port (default 8080)")
    http: bool | None = _opt("Serve HTTP (default true; false: Pub/Sub only)")
    subscription: _Text | None = _opt("Pub/Sub subscription projects/P/subscriptions/S to pull")
    as_of: _Text | None = _opt("Lookback cap date YYYY-MM-DD (default: today, UTC)")
    sync: Literal["full", "normal"] | None = _opt("SQLite synchronous mode (default full)")
    execution_log: _Text | None = _opt("Execution log (default <state_dir>/execution_log.sqlite)")
    log: bool | None = _opt("Write the execution log (default true)")
    lock_timeout: Duration | None = _opt("Wait for another daemon's state-dir lock (30s)")
    relations_refresh: Duration | None = _opt("Poll relation files this often (60s; 0s: SIGHUP)")
    shutdown_timeout: Duration | None = _opt("Finish in-flight work on SIGTERM (8s)")
    loop: Literal["auto", "asyncio", "uvloop"] | None = _opt("Event loop (default auto)")
    log_level: _Text | None = _opt("Daemon log level (default INFO)")
    max_batch: PositiveInt | None = _opt("Events per ingest transaction (512)")
    retry_backoff_base: Duration | None = _opt("First dispatch retry delay (500ms)")
    retry_backoff_cap: Duration | None = _opt("Longest dispatch retry delay (60s)")
    compact_every: PositiveInt | None = _opt("Journal rows before a window snapshot (20000)")
    compact_min_interval: Duration | None = _opt("Least time between window snapshots (5s)")
    mark_flush_interval: Duration | None = _opt("How often dispatch outcomes are written (50ms)")
    housekeeping_interval: Duration | None = _opt("How often old rows are pruned (60s)")
    done_retention: Duration | None = _opt("Keep delivered triggers this long (7d)")
    dead_letter_retention: Duration | None = _opt("Keep dead triggers, dead letters this long (7d)")
    store_backoff_base: Duration | None = _opt("First retry delay of a failing store (50ms)")
    store_backoff_cap: Duration | None = _opt("Longest retry delay of a failing store (5s)")
    store_log_interval: Duration | None = _opt("Log a failing store at most this often (30s)")
    header_timeout: Duration | None = _opt("Close a connection without a request head (10s)")
    body_timeout: Duration | None = _opt("Answer 408 when a body takes longer (30s)")
    max_connections: PositiveInt | None = _opt("Beyond this, /events answers 503 (1000)")
    listen_backlog: PositiveInt | None = _opt("Listening socket's accept backlog (2048)")


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
