"""JSON Schemas generated from the project's pydantic models (checked in under ``schemas/``).

* ``routes.schema.json`` -- ``routes.yaml`` (:class:`RoutesSpec`). Editors pick it up from
  the ``# yaml-language-server: $schema=schemas/routes.schema.json`` modeline, and
  ``check-jsonschema --schemafile schemas/routes.schema.json routes.yaml`` runs it in CI.
  Cross-field rules (names that must exist, paths that chain, no cycles) are beyond JSON
  Schema: ``scoperouter validate`` checks them.
* ``event.schema.json`` -- the canonical completion event a producer should publish
  (SPEC section 3). Legacy shapes are still accepted by the router but not described here.
* ``trigger.schema.json`` -- the trigger a processor receives (:class:`Trigger`).

``scoperouter schema`` writes them; ``scoperouter schema --check`` fails when a checked-in
file differs from what the models generate now. Both fail (exit 1) when a property has no
``description``: every model field carries ``Field(description=...)``, so the schema is a
reference editors can show (docs/registry.md is the long form).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scoperouter.messages.models import Priority, Status, Trigger
from scoperouter.processor_registry.loader import EXTENSION_PREFIX
from scoperouter.processor_registry.models import RoutesSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class CanonicalEvent(BaseModel):
    """A completion event in the canonical form (SPEC section 3).

    ``source`` is required, and either ``game_date`` or both ``start_date`` and
    ``end_date`` (a backfill). ``event_id`` falls back to the Pub/Sub message id.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="scoperouter completion event",
        json_schema_extra={
            "anyOf": [{"required": ["game_date"]}, {"required": ["start_date", "end_date"]}],
            "dependentRequired": {"start_date": ["end_date"], "end_date": ["start_date"]},
            "examples": [
                {
                    "event_id": "e-123",
                    "source": "nba_raw.nbac_injury_report",
                    "game_date": "2025-11-19",
                    "status": "success",
                    "affected_entities": {"players": ["lebronjames"]},
                    "changed_fields": ["injury_status"],
                    "priority": "critical",
                    "correlation_id": "c-9",
                    "produced_at": "2025-11-19T18:05:00Z",
                }
            ],
        },
    )

    event_id: str | None = Field(
        default=None, min_length=1, description="Unique id; defaults to the Pub/Sub message id."
    )
    source: str = Field(
        min_length=1,
        description="Full source name (dataset.table), or a bare table name the registry "
        "names exactly once.",
    )
    game_date: date | None = Field(
        default=None,
        description="The date the data is about (a registry may name this key otherwise "
        "with date_field, e.g. business_date).",
    )
    start_date: date | None = Field(default=None, description="Backfill range start.")
    end_date: date | None = Field(default=None, description="Backfill range end (inclusive).")
    status: Status = Field(
        default="success", description="success and partial route; no_data and failed do not."
    )
    affected_entities: dict[str, list[str]] | None = Field(
        default=None,
        description="Changed ids per entity type, keyed by the declared name or its plural "
        "(players, teams, games). Absent: the whole date.",
    )
    changed_fields: list[str] | None = Field(
        default=None, description="Changed columns; absent or empty means unknown (relevant)."
    )
    priority: Priority = Field(default="normal", description="critical fires windows at once.")
    correlation_id: str | None = Field(
        default=None,
        description="Carried into the triggers this event causes (never routes), stripped. "
        "Blank (empty or whitespace only) counts as absent; a number is read as its text. "
        "Control characters are rejected (no store keeps a NUL).",
    )
    produced_at: datetime | None = Field(
        default=None,
        description="When the producer finished (RFC 3339, or epoch seconds): informs the "
        "completion ledger and replay's virtual clock, never routes. One the router cannot "
        "read counts as absent (logged and counted), never a rejection.",
    )
    skip_downstream: bool = Field(default=False, description="Route nothing (backfills).")
    record_count: int | None = Field(
        default=None, ge=0, description="Rows written (informational; never routes)."
    )
    referenced_tables: list[str] | None = Field(
        default=None,
        description="Tables the run read (dataset.table; its BigQuery jobs' referenced_tables): "
        "the router counts those routes.yaml does not declare (informational; never routes).",
    )
    trigger_message_id: str | None = Field(
        default=None,
        min_length=1,
        description="The Pub/Sub message id of the trigger this run answers (its attempt): the "
        "closed loop attributes the completion to that trigger (never routes).",
    )
    missed_entities: list[str] | None = Field(
        default=None,
        description="Ids of the trigger this run did not process (status partial): the router "
        "re-runs them (never routes).",
    )


def _with_header(schema: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    out: dict[str, Any] = {"$schema": DIALECT, "$id": f"{name}", "title": title}
    out.update({k: v for k, v in schema.items() if k != "title"})
    return out


def _names_checked(node: Any) -> None:
    """Pydantic puts a map's key pattern (a constrained ``str`` key: a processor, entity,
    relation or source name, a ``map`` key, a header name) only in ``patternProperties``,
    which checks the values of matching keys and lets any other key through unchecked: a
    processor named ``bad-name`` passed the schema with nothing under it checked. The
    pattern goes into ``propertyNames`` too, so that such a key fails, as in the models."""
    if isinstance(node, dict):
        pats = node.get("patternProperties")
        names = node.get("propertyNames")
        if isinstance(pats, dict) and len(pats) == 1 and isinstance(names, dict):
            names.setdefault("pattern", next(iter(pats)))
        for v in node.values():
            _names_checked(v)
    elif isinstance(node, list):
        for v in node:
            _names_checked(v)


def routes_schema() -> dict[str, Any]:
    s = RoutesSpec.model_json_schema(by_alias=True, mode="validation")
    _names_checked(s)
    # top-level x-... keys are extensions the loader ignores (a home for YAML anchors)
    s["patternProperties"] = {f"^{EXTENSION_PREFIX}": {}}
    return _with_header(s, "routes.schema.json", "scoperouter registry (routes.yaml)")


def event_schema() -> dict[str, Any]:
    s = CanonicalEvent.model_json_schema(by_alias=True, mode="validation")
    return _with_header(s, "event.schema.json", "scoperouter completion event")


def trigger_schema() -> dict[str, Any]:
    s = Trigger.model_json_schema(by_alias=True, mode="serialization")
    # on the wire only when not 0 (Trigger.wire), so excluded from the plain dump
    more = Trigger.model_json_schema(by_alias=True, mode="validation")["properties"]
    s["properties"]["caused_by_more"] = more["caused_by_more"]
    return _with_header(s, "trigger.schema.json", "scoperouter trigger")


GENERATORS: Mapping[str, Callable[[], dict[str, Any]]] = {
    "routes.schema.json": routes_schema,
    "event.schema.json": event_schema,
    "trigger.schema.json": trigger_schema,
}


def render(schema: Mapping[str, Any]) -> str:
    """Deterministic text of a schema file."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generate(
    generators: Mapping[str, Callable[[], dict[str, Any]]] | None = None,
) -> dict[str, str]:
    """File name -> file text, for every schema."""
    return {name: render(fn()) for name, fn in (generators or GENERATORS).items()}


def write(
    directory: Path, generators: Mapping[str, Callable[[], dict[str, Any]]] | None = None
) -> list[Path]:
    """Write every schema into ``directory`` (created); return the files whose text changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for name, text in generate(generators).items():
        p = directory / name
        try:
            old = p.read_text(encoding="utf-8")
        except OSError:
            old = None
        if old != text:
            p.write_text(text, encoding="utf-8")
            changed.append(p)
    return changed


def undescribed(schema: Mapping[str, Any], where: str = "") -> list[str]:
    """JSON pointers of every property (in ``properties`` of the schema or its ``$defs``)
    that has no ``description``: the reference must explain every key."""
    out: list[str] = []
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for name, sub in props.items():
            ptr = f"{where}/properties/{name}"
            if not isinstance(sub, Mapping) or not str(sub.get("description", "")).strip():
                out.append(ptr)
            if isinstance(sub, Mapping):
                out.extend(undescribed(sub, ptr))
    defs = schema.get("$defs")
    if isinstance(defs, Mapping):
        for name, sub in defs.items():
            if isinstance(sub, Mapping):
                out.extend(undescribed(sub, f"{where}/$defs/{name}"))
    return out


def missing_descriptions(
    generators: Mapping[str, Callable[[], dict[str, Any]]] | None = None,
) -> list[tuple[str, str]]:
    """(file name, JSON pointer) of every property without a description."""
    return [
        (name, ptr) for name, fn in (generators or GENERATORS).items() for ptr in undescribed(fn())
    ]


def stale(
    directory: Path, generators: Mapping[str, Callable[[], dict[str, Any]]] | None = None
) -> list[tuple[str, str]]:
    """(file name, why) for every schema file that is missing or differs from the models."""
    out: list[tuple[str, str]] = []
    for name, text in generate(generators).items():
        p = directory / name
        try:
            old = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            out.append((name, "missing"))
            continue
        except OSError as exc:
            out.append((name, f"unreadable: {exc.strerror}"))
            continue
        if old != text:
            out.append((name, "differs from the models"))
    return out
