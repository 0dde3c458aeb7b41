"""Plain integers whose value YAML 1.1 (PyYAML) and YAML 1.2 / JSON Schema editors read
differently are errors at the scalar: a leading zero (``010`` is octal 8 to YAML 1.1, 10 to
YAML 1.2), a ``0x`` / ``0b`` prefix, a ``_`` or a ``:`` (base 60: ``1:00`` is 60). Plain
decimal integers, ``0``, quoted strings and dates are unaffected."""

from __future__ import annotations

import pytest

from scoperouter.processor_registry.loader import check_config_bytes
from scoperouter.processor_registry.yaml_positions import YamlLoadError, load_positioned

DOC = """\
version: 1
entities: {{player: {{}}}}
processors:
  p:
    phase: 3
    granularity: player
    {line}
    inputs:
      - source: a.b
"""

# (the processor line 7, column of the scalar, message fragments)
BAD = [
    ("lookback: {days: 010}", 22, ["write 10, not 010", "octal 8"]),
    ("lookback: {days: 0150}", 22, ["write 150, not 0150", "octal 104"]),
    ("lookback: {days: 00}", 22, ["write 0, not 00", "octal 0"]),
    ("max_entities: -010", 19, ["write -10, not -010", "octal -8"]),
    ("max_entities: +07", 19, ["write 7, not +07", "octal 7"]),
    ("max_entities: 0_10", 19, ["write 10, not 0_10", "octal 8"]),
    ("max_entities: 0x1F", 19, ["write 31, not 0x1F", "hexadecimal"]),
    ("max_entities: 0b101", 19, ["write 5, not 0b101", "binary"]),
    ("max_entities: 1_000", 19, ["write 1000, not 1_000", "the text '1_000'"]),
    ("max_entities: 1:00", 19, ["write 60, not 1:00", "base 60"]),
    ("max_entities: 1:30:00", 19, ["write 5400, not 1:30:00", "base 60"]),
    ("engineering_hours: 1_000.5", 24, ["write 1000.5, not 1_000.5"]),
    ("engineering_hours: 1:30.5", 24, ["write 90.5, not 1:30.5", "base 60"]),
    ("description: 010", 18, ["write 10, not 010", "quote it"]),
]


@pytest.mark.parametrize(("line", "col", "fragments"), BAD, ids=[b[0] for b in BAD])
def test_a_number_yaml_versions_read_differently_is_one_error_at_the_scalar(
    line: str, col: int, fragments: list[str]
) -> None:
    """One yaml_number error at the scalar's line:column, saying what to write and why."""
    r = check_config_bytes(DOC.format(line=line), file="routes.yaml", with_relations=False)
    assert len(r.issues) == 1, r.issues
    err = r.issues[0]
    assert (err.severity, err.code, err.line, err.column) == ("error", "yaml_number", 7, col)
    for fragment in fragments:
        assert fragment in err.message, err.message


# (the processor line 7, the value the registry then holds at that key)
GOOD = [
    ("lookback: {days: 10}", ("lookback", "days"), 10),
    ("lookback: {days: 1}", ("lookback", "days"), 1),
    ("run_retries: 0", ("run_retries",), 0),
    ("max_entities: 150", ("max_entities",), 150),
    ("engineering_hours: 0", ("engineering_hours",), 0),
    ("engineering_hours: 0.5", ("engineering_hours",), 0.5),
    ("engineering_hours: 10.25", ("engineering_hours",), 10.25),
    ("description: '010'", ("description",), "010"),
    ('description: "1:00"', ("description",), "1:00"),
    ("description: 0o17", ("description",), "0o17"),  # a string to YAML 1.1 already
    ("description: 2025-01-05", ("description",), "2025-01-05"),  # dates stay strings
    ("description: 10:30 tip-off", ("description",), "10:30 tip-off"),
]


@pytest.mark.parametrize(("line", "path", "value"), GOOD, ids=[g[0] for g in GOOD])
def test_decimal_numbers_quoted_strings_and_dates_load_as_before(
    line: str, path: tuple[str, ...], value: object
) -> None:
    """Plain decimals (0 included), quoted strings and dates load, with their value."""
    text = DOC.format(line=line)
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    assert r.errors == (), r.errors
    data: object = load_positioned(text).data
    for part in ("processors", "p", *path):
        assert isinstance(data, dict)
        data = data[part]
    assert data == value and type(data) is type(value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("a: [1, 010]\n", "write 10, not 010"), ("a: {b: 0x10}\n", "write 16, not 0x10")],
)
def test_the_loader_rejects_them_anywhere_in_the_document(text: str, fragment: str) -> None:
    """load_positioned raises a yaml_number YamlLoadError, in sequences and mappings alike."""
    with pytest.raises(YamlLoadError) as exc:
        load_positioned(text)
    assert exc.value.code == "yaml_number" and fragment in exc.value.message
