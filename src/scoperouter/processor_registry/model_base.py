"""Shared building blocks of the registry models: the strict base class, the annotated
scalar types (durations, identifiers, source names) and the warning codes.

Invariant: nothing here knows about a particular section of ``routes.yaml``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

# The pattern goes into the JSON Schema: keep it ECMA-262 compatible (no Python named groups).
DURATION_PATTERN = r"^[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)$"
DURATION_RE = re.compile(r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# the longest duration any setting takes: a longer one only overflows the clocks it is added
# to (a window's quiet of 10^20 days validated, then replay failed with an OverflowError)
MAX_DURATION_DAYS = 36_500  # 100 years


def _at_most_max(text: str) -> str:
    if (DURATION_RE.match(text) or _BARE_SECONDS.match(text)) and parse_seconds(
        text
    ) > MAX_DURATION_DAYS * 86400.0:
        raise ValueError(f"duration {text!r} is over {MAX_DURATION_DAYS}d (100 years)")
    return text


# a duration, or a bare number of seconds (``0``, ``30``; :func:`parse_seconds`)
SECONDS_PATTERN = r"^[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)?$"
_BARE_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


def parse_seconds(text: str) -> float:
    """Seconds in a serve setting's duration: ``30s``, ``2m`` or a bare number of seconds
    (``30``). Raises ValueError on bad input."""
    return float(text) if _BARE_SECONDS.match(text) else parse_duration(text)


Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        description="A duration such as 0s, 30s, 2m, 1h (units: ms, s, m, h, d).",
        examples=["30s", "2m"],
    ),
    AfterValidator(_at_most_max),
]
# a duration above zero (a timeout: 0s would fail every attempt)
POSITIVE_DURATION_PATTERN = (
    r"^(?:[0-9]*[1-9][0-9]*(?:\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)(?:ms|s|m|h|d)$"
)
PositiveDuration = Annotated[
    str,
    Field(
        pattern=POSITIVE_DURATION_PATTERN,
        description="A duration above zero such as 500ms, 30s, 2m (units: ms, s, m, h, d).",
        examples=["30s", "2m"],
    ),
    AfterValidator(_at_most_max),
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
# A table a processor reads on purpose (lineage.ignore_tables): a source name, or a prefix of
# table names ending in ``*`` (``ds.events_*``, a BigQuery wildcard table's shards)
IgnoredTable = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*(\.[A-Za-z_][A-Za-z0-9_\-]*\*|\.\*)?$",
        description="A source (dataset.table), or dataset.prefix* for every table whose name "
        "starts with the prefix (a wildcard table such as ds.events_*).",
    ),
]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
# The most a setting the PostgreSQL state store keeps in an ``integer`` (int4) column may be
# (a window's max_entities): past it every ingest touching the processor failed
INT4_MAX = 2**31 - 1
# A positive integer the PostgreSQL state store keeps in an ``integer`` column
PositiveInt4 = Annotated[StrictInt, Field(gt=0, le=INT4_MAX)]

# A changed-field name, written bare: not empty, no surrounding whitespace, no comma. Names
# are matched stripped and ignoring case (scoperouter.field_names), and an event's blank
# name makes its fields unknown, so an empty item matches nothing (``fields: [""]`` would
# skip every event that lists its fields, like ``fields: []``) and padding is never needed.
FIELD_NAME_PATTERN = r"^[^\s,](?:[^,]*[^\s,])?$"
FieldName = Annotated[
    str,
    Field(
        pattern=FIELD_NAME_PATTERN,
        description="A changed-field name (a column name, matched ignoring case): not "
        "empty, no surrounding whitespace, no comma (one item per field).",
    ),
]


def field_name_problem(name: str) -> str:
    """Why ``name`` cannot be a changed-field name (the message of a FIELD_NAME_PATTERN
    mismatch)."""
    if not name:
        return (
            "empty field name: no event carries an empty changed field, so it matches nothing "
            "(alone it would skip every event that lists its changed fields); remove it"
        )
    if "," in name:
        parts = [p.strip() for p in name.split(",") if p.strip()]
        split = f"; list each as its own item: [{', '.join(parts)}]" if parts else ""
        return f"field name {name!r} holds a comma: one item names one field{split}"
    if not name.strip():
        return f"field name {name!r} is surrounding whitespace only: it matches no event"
    return (
        f"field name {name!r} has surrounding whitespace: write {name.strip()!r} (changed "
        "fields are matched without their surrounding whitespace)"
    )


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
    "barrier_may_wait_forever",
    "field_case",
    "barrier_without_upstream",
    "relation_id_case",
    "relation_mixed_dates",
    "relation_missing_days",
    "relation_isolated_date",
    "lineage_code_missing",
    "insecure_audience",
]
WARNING_CODES: tuple[str, ...] = get_args(WarningCode)


def parse_duration(text: str) -> float:
    """Seconds in a duration string (``30s`` -> 30.0). Raises ValueError on bad input."""
    m = DURATION_RE.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 0s, 30s, 2m, 1h")
    return float(m.group("n")) * _UNIT_SECONDS[m.group("unit")]


class Strict(BaseModel):
    # no populate_by_name: a Python field name (``from_``, ``validate_``) is not a YAML key
    # allow_inf_nan=False: a threshold of .inf or .nan (YAML reads both as floats) is refused
    # here; accepted, it reached `report --json` as the bare token Infinity, not JSON
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
