"""``fields`` / ``ignore_fields`` items are names an event can carry: not empty, no
surrounding whitespace, no comma (an error at the item). Changed fields are matched
ignoring case, so capitals are harmless, declared columns are compared ignoring case, and
two names of one list differing only by case get a ``field_case`` warning."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from scoperouter.processor_registry.loader import check_config_bytes

ROOT = Path(__file__).resolve().parents[2]

DOC = """\
version: 1
entities: {{player: {{}}}}
{sources}processors:
  p:
    phase: 3
    granularity: player
    inputs:
      - source: a.b
        {key}: {items}
"""


def _check(items: str, key: str = "fields", sources: str = "") -> list[tuple[str, str, str]]:
    """(severity, code, 'line:col path') of every finding of the registry with these items."""
    r = check_config_bytes(
        DOC.format(items=items, key=key, sources=sources), file="routes.yaml", with_relations=False
    )
    return [
        (i.severity, i.code, f"{i.line}:{i.column} {'.'.join(map(str, i.path))}") for i in r.issues
    ]


# (items as written, key, column of the bad item on line 9, message fragment)
BAD = [
    ('[""]', "fields", 18, "empty field name"),
    ('[points, ""]', "fields", 26, "empty field name"),
    ('["points "]', "fields", 18, "surrounding whitespace"),
    ('[" points"]', "fields", 18, "surrounding whitespace"),
    ('["\\tpoints"]', "fields", 18, "surrounding whitespace"),
    ('["   "]', "fields", 18, "surrounding whitespace"),
    ('["points,rebounds"]', "fields", 18, "a comma"),
    ('[","]', "fields", 18, "a comma"),
    ('[""]', "ignore_fields", 25, "empty field name"),
    ('["arena "]', "ignore_fields", 25, "surrounding whitespace"),
    ('["broadcast,arena"]', "ignore_fields", 25, "a comma"),
]


@pytest.mark.parametrize(("items", "key", "col", "fragment"), BAD, ids=[b[0] + b[1] for b in BAD])
def test_a_field_name_no_event_can_carry_is_a_positioned_error(
    items: str, key: str, col: int, fragment: str
) -> None:
    """An empty, padded or comma-holding field name is one schema error at its item."""
    r = check_config_bytes(
        DOC.format(items=items, key=key, sources=""), file="routes.yaml", with_relations=False
    )
    assert len(r.errors) == 1, r.issues
    err = r.errors[0]
    index = 1 if items.startswith("[points,") else 0
    assert (err.line, err.column, err.path) == (
        9,
        col,
        ("processors", "p", "inputs", 0, key, index),
    )
    assert fragment in err.message, err.message


@pytest.mark.parametrize(("items", "key", "col", "fragment"), BAD, ids=[b[0] + b[1] for b in BAD])
def test_the_json_schema_rejects_the_same_field_names(
    items: str, key: str, col: int, fragment: str
) -> None:
    """The generated JSON Schema rejects every such name too (editors agree with validate)."""
    schema = json.loads((ROOT / "schemas" / "routes.schema.json").read_text(encoding="utf-8"))
    doc = yaml.safe_load(DOC.format(items=items, key=key, sources=""))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc))


GOOD = ["[points]", "[points, rebounds]", "[player_1_team_abbr]", '["three pt made"]', "[x]"]


@pytest.mark.parametrize("items", GOOD)
def test_ordinary_field_names_pass_strict(items: str) -> None:
    """Plain lower-case names (inner spaces allowed) give no finding at all."""
    assert _check(items) == []
    assert _check(items, key="ignore_fields") == []


# (items, sources:, key, expected findings); a sources: line moves the input to line 10.
# Changed fields are matched ignoring case (scoperouter.field_names): capitals alone are
# harmless; two spellings of one name in one list are a field_case warning at the later one.
CASE = [
    ("[Points]", "", "fields", []),
    ("[points, fgMade]", "", "ignore_fields", []),
    ("[Points]", "sources: {a.b: {}}\n", "fields", []),
    ("[points, points]", "", "fields", []),  # an exact repeat is not a case matter
    (
        "[points, Points]",
        "",
        "fields",
        [("warning", "field_case", "9:26 processors.p.inputs.0.fields.1")],
    ),
    (
        "[Points, POINTS, rebounds]",
        "",
        "ignore_fields",
        [("warning", "field_case", "9:33 processors.p.inputs.0.ignore_fields.1")],
    ),
    # declared columns: compared ignoring case, either side
    ("[Points]", "sources: {a.b: {columns: [Points]}}\n", "fields", []),
    ("[Points]", "sources: {a.b: {columns: [points]}}\n", "fields", []),
    ("[points]", "sources: {a.b: {columns: [POINTS]}}\n", "fields", []),
    (
        "[Points]",
        "sources: {a.b: {columns: [rebounds]}}\n",
        "fields",
        [("error", "unknown_column", "10:18 processors.p.inputs.0.fields.0")],
    ),
    (
        "[points, Points]",
        "sources: {a.b: {columns: [points]}}\n",
        "fields",
        [("warning", "field_case", "10:26 processors.p.inputs.0.fields.1")],
    ),
]


@pytest.mark.parametrize(("items", "sources", "key", "expected"), CASE)
def test_field_names_are_checked_ignoring_case(
    items: str, sources: str, key: str, expected: list[tuple[str, str, str]]
) -> None:
    """Capitals are harmless; unknown_column ignores case; names equal but for case warn."""
    assert _check(items, key=key, sources=sources) == expected


def test_the_field_case_warning_names_both_spellings() -> None:
    """The warning names the two spellings and says matching ignores case."""
    r = check_config_bytes(DOC.format(items="[points, Points]", key="fields", sources=""))
    (w,) = r.warnings
    assert "'Points'" in w.message and "'points'" in w.message and "ignoring case" in w.message
