"""Registry models of ``server:`` and ``auth:``: the settings of ``scoperouter serve``.

Invariant: every value here is optional (None = not set in routes.yaml); the one
resolver in :mod:`scoperouter.runtime.config` applies precedence and defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, model_validator
from pydantic.json_schema import WithJsonSchema

from .model_base import MAX_DURATION_DAYS, SECONDS_PATTERN, PositiveInt, Strict, _at_most_max


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


def _number_as_text(value: object) -> object:
    """A YAML number (``relations_refresh: 30``) as its text, checked as one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


# a duration setting of serve takes here what its flag and environment variable take
# (scoperouter.runtime.config.seconds): 30s, 2m, or a bare number of seconds (0, 30)
_SECONDS_DESCRIPTION = (
    "A duration such as 0s, 30s, 2m, 1h (units: ms, s, m, h, d), or a number of seconds (0, 30)."
)
ServerDuration = Annotated[
    str,
    BeforeValidator(_number_as_text),
    Field(pattern=SECONDS_PATTERN),
    AfterValidator(_at_most_max),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": SECONDS_PATTERN},
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION_DAYS * 86400},
            ],
            "description": _SECONDS_DESCRIPTION,
            "examples": ["30s", "2m", 30],
        }
    ),
]


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
    dedup_horizon: ServerDuration = Field(
        default="24h", description="A repeated event_id within this horizon is ignored."
    )
    dead_letter_topic: str | None = Field(
        default=None, description="Optional Pub/Sub topic receiving dead letters; ${ENV} allowed."
    )
    state_dir: _Text | None = _opt("SQLite state and outbox (default .scoperouter)")
    state: _Text | None = _opt(
        "State store: postgresql://... (shared by replicas; ${ENV} allowed) or sqlite:///path "
        "(default: the SQLite store in state_dir)"
    )
    lease: ServerDuration | None = _opt(
        "A fired or claimed trigger stays reserved to its replica (30s)"
    )
    replica_id: _Text | None = _opt(
        "This replica's name in trigger leases (default host-pid-random)"
    )
    state_poll_interval: ServerDuration | None = _opt(
        "Look for due windows, expired leases (200ms)"
    )
    state_lock_timeout: ServerDuration | None = _opt(
        "PostgreSQL: a statement waiting this long for a lock fails, retried (30s; 0s: no limit)"
    )
    state_idle_in_transaction_timeout: ServerDuration | None = _opt(
        "PostgreSQL: end a session idle inside a transaction this long, its locks freed "
        "(60s; 0s: never)"
    )
    host: _Text | None = _opt("HTTP bind address (default 127.0.0.1)")
    port: Annotated[StrictInt, Field(ge=0, le=65535)] | None = _opt("HTTP port (default 8080)")
    http: StrictBool | None = _opt("Serve HTTP (default true; false: Pub/Sub only)")
    subscription: _Text | None = _opt("Pub/Sub subscription projects/P/subscriptions/S to pull")
    as_of: _Text | None = _opt("Lookback cap date YYYY-MM-DD (default: today, UTC)")
    sync: Literal["full", "normal"] | None = _opt("SQLite synchronous mode (default full)")
    execution_log: _Text | None = _opt("Execution log (default <state_dir>/execution_log.sqlite)")
    log: StrictBool | None = _opt("Write the execution log (default true)")
    execution_log_retention: ServerDuration | None = _opt(
        "Keep execution-log rows this long (30d; 0s: forever)"
    )
    outbox_max_bytes: Annotated[StrictInt, Field(ge=0)] | None = _opt(
        "Rotate outbox.jsonl past this many bytes (268435456; 0: never)"
    )
    outbox_keep: Annotated[StrictInt, Field(ge=1)] | None = _opt(
        "Rotated outbox files kept, .1 to .N (3); a rotation past them deletes the oldest"
    )
    lock_timeout: ServerDuration | None = _opt(
        "Wait for another daemon's state-dir or SQLite lock (30s)"
    )
    relations_refresh: ServerDuration | None = _opt(
        "Poll relation files this often (60s; 0s: SIGHUP)"
    )
    shutdown_timeout: ServerDuration | None = _opt("Finish in-flight work on SIGTERM (8s)")
    loop: Literal["auto", "asyncio", "uvloop"] | None = _opt("Event loop (default auto)")
    cpus: (
        Annotated[str, Field(pattern=r"^(auto|all|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)$")] | None
    ) = _opt(
        "CPUs the daemon's threads run on: auto (one, when it may use more; default), all "
        "(the scheduler's choice) or a CPU list like 0 or 2-3"
    )
    log_level: _Text | None = _opt("Daemon log level (default INFO)")
    max_batch: PositiveInt | None = _opt("Events per ingest transaction (512)")
    ingest_linger: ServerDuration | None = _opt(
        "Wait for more events to join an ingest transaction (2ms; 0s: no wait)"
    )
    retry_backoff_base: ServerDuration | None = _opt("First dispatch retry delay (500ms)")
    retry_backoff_cap: ServerDuration | None = _opt("Longest dispatch retry delay (60s)")
    breaker_threshold: PositiveInt | None = _opt(
        "Failed attempts in a row that open a target's circuit (5)"
    )
    dispatch_page_interval: ServerDuration | None = _opt(
        "Longest wait before the dispatcher pages waiting triggers from the store (1s)"
    )
    compact_every: PositiveInt | None = _opt("Journal rows before a window snapshot (20000)")
    compact_min_interval: ServerDuration | None = _opt("Least time between window snapshots (5s)")
    mark_flush_interval: ServerDuration | None = _opt(
        "How often dispatch outcomes are written (50ms)"
    )
    housekeeping_interval: ServerDuration | None = _opt("How often old rows are pruned (60s)")
    done_retention: ServerDuration | None = _opt("Keep delivered triggers this long (7d)")
    dead_letter_retention: ServerDuration | None = _opt(
        "Keep dead letters of rejected events this long (7d); dead triggers are kept until redriven"
    )
    store_backoff_base: ServerDuration | None = _opt("First retry delay of a failing store (50ms)")
    store_backoff_cap: ServerDuration | None = _opt("Longest retry delay of a failing store (5s)")
    store_log_interval: ServerDuration | None = _opt("Log a failing store at most this often (30s)")
    header_timeout: ServerDuration | None = _opt("Close a connection without a request head (10s)")
    body_timeout: ServerDuration | None = _opt("Answer 408 when a body takes longer (30s)")
    max_connections: PositiveInt | None = _opt("Beyond this, /events answers 503 (1000)")
    listen_backlog: PositiveInt | None = _opt("Listening socket's accept backlog (2048)")
