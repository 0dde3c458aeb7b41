"""Registry models of ``targets:`` (SPEC section 2): where triggers go and in what shape.

Invariant: frozen and strict like every registry model; cross-target checks live in
:mod:`scoperouter.processor_registry.target_checks`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, StrictBool, StrictInt, model_validator

from .model_base import Duration, PositiveDuration, PositiveInt, Strict


class PubSubTargetSpec(Strict):
    topic: str = Field(min_length=1, description="Topic id or projects/P/topics/T; ${ENV} allowed.")
    project: str | None = Field(default=None, description="GCP project; ${ENV} allowed.")
    ordering: StrictBool = Field(
        default=True, description="Use an ordering key per processor and date."
    )
    timeout: PositiveDuration = Field(
        default="60s",
        description="Longest wait for Pub/Sub to confirm one publish; then the attempt fails, "
        "retried like any retryable error (the client library may still deliver it later: "
        "dedupe on the trigger_id attribute).",
    )


class HttpTargetSpec(Strict):
    url: str = Field(min_length=1, description="http(s) URL receiving the Pub/Sub push envelope.")
    timeout: PositiveDuration = Field(
        default="60s", description="Timeout of one delivery attempt (above zero)."
    )
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
    envelope: StrictBool = Field(
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
    retry_horizon: Duration = Field(
        default="24h",
        description="How long a trigger that keeps failing with retryable errors is retried "
        "(capped exponential backoff; while the target is down its backlog waits in the state "
        "store behind a circuit breaker and is redriven when a probe succeeds). Counted from "
        "when the trigger fired; only past it is the trigger dead-lettered (retry_horizon), "
        "and while the circuit is closed only once an attempt of it failed: one never "
        "attempted (waiting for a slot, or pending across a stop) waits for its first attempt.",
    )
    max_attempts: PositiveInt | None = Field(
        default=None,
        description="Optional cap on delivery attempts before the trigger is dead-lettered "
        "(max_attempts) even inside the retry horizon; unset: only the horizon ends retries. "
        "Set, the target has no circuit breaker: each trigger spends its own attempts.",
    )
    concurrency: PositiveInt = Field(
        default=4,
        description="Deliveries in flight at once per processor using this target (and per "
        "replica): processors sharing a target (defaults.target, or the same URL or topic) "
        "each get this many, with a circuit breaker of their own. To cap a shared service, "
        "give each processor its own target with its share of the cap.",
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
