"""CI-grade validate: warning codes silenced per line, per file or per run; near-miss
source names; indentation errors pointing at the line that moved (issue 17, acceptance 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.processor_registry.loader import check_config_bytes
from scoperouter.processor_registry.models import WARNING_CODES
from scoperouter.processor_registry.source_checks import one_edit_apart

REPO = Path(__file__).resolve().parents[2]

# one processor reading raw.box with game ids it cannot map (unmapped_input), and a
# target whose ${TOPIC} is unset (env_unset)
WARNED = """\
version: 1
entities: {{player: {{}}, game: {{}}}}
processors:
  summary:
    phase: 3
    granularity: player
    inputs:
      - source: raw.box{box_comment}
    target: {{pubsub: {{topic: '${{TOPIC}}'}}}}{topic_comment}
{extra}"""


def _check(text: str, ignore: tuple[str, ...] = ()) -> tuple[set[str], set[str], set[str]]:
    r = check_config_bytes(text, with_relations=False, env={}, ignore=ignore)
    return (
        {i.code for i in r.errors},
        {i.code for i in r.warnings},
        {i.code for i in r.silenced},
    )


@pytest.mark.parametrize(
    ("box_comment", "topic_comment", "extra", "ignore", "warned", "silenced"),
    [
        ("", "", "", (), {"unmapped_input", "env_unset"}, set()),
        # a comment on the reported line silences that code there
        ("  # scoperouter: ignore[unmapped_input]", "", "", (), {"env_unset"}, {"unmapped_input"}),
        ("", "  # scoperouter: ignore[env_unset]", "", (), {"unmapped_input"}, {"env_unset"}),
        # several codes in one comment: only what is reported on its line is silenced
        ("  # scoperouter: ignore[env_unset, unmapped_input]", "", "", (),
         {"env_unset"}, {"unmapped_input"}),
        # per file
        ("", "", "validate: {ignore: [env_unset]}\n", (), {"unmapped_input"}, {"env_unset"}),
        # per run (validate --ignore)
        ("", "", "", ("unmapped_input", "env_unset"), set(), {"unmapped_input", "env_unset"}),
        # an error code, or a typo, in a comment is itself a warning
        ("  # scoperouter: ignore[cycle]", "", "", ("unmapped_input", "env_unset"),
         {"bad_ignore"}, {"unmapped_input", "env_unset"}),
        ("  # scoperouter: ignore[unmaped_input]", "", "", (),
         {"unmapped_input", "env_unset", "bad_ignore"}, set()),
    ],
)  # fmt: skip
def test_warnings_are_silenced_per_place_or_per_code(
    box_comment: str,
    topic_comment: str,
    extra: str,
    ignore: tuple[str, ...],
    warned: set[str],
    silenced: set[str],
) -> None:
    """Only the named codes, at the named place (or everywhere), are silenced; silenced
    warnings are returned apart, never lost."""
    text = WARNED.format(box_comment=box_comment, topic_comment=topic_comment, extra=extra)
    errors, warnings, quiet = _check(text, ignore)
    assert errors == set()
    assert (warnings, quiet) == (warned, silenced)


def test_errors_cannot_be_silenced() -> None:
    """An ignore comment naming an error's code leaves the error (and adds bad_ignore)."""
    text = WARNED.format(
        box_comment="", topic_comment="", extra="validate: {ignore: [env_unset]}\n"
    ).replace(
        "phase: 3\n", "phase: 3\n    publishes: raw.bxo  # scoperouter: ignore[near_miss_source]\n"
    )
    errors, warnings, _ = _check(text)
    assert "near_miss_source" in errors and "bad_ignore" in warnings


def test_validate_ignore_key_rejects_unknown_codes() -> None:
    """validate.ignore takes warning codes only: a typo is a schema error at its position."""
    text = WARNED.format(box_comment="", topic_comment="", extra="validate: {ignore: [env_unst]}\n")
    r = check_config_bytes(text, with_relations=False, env={})
    assert [(i.code, i.line) for i in r.errors] == [("schema", 10)]


def test_validate_cli_ignore_strict_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--strict fails on a warning, passes once it is silenced by --ignore; --json lists the
    silenced warnings; an unknown --ignore code is a usage error (exit 2)."""
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(
        WARNED.format(box_comment="", topic_comment="  # scoperouter: ignore[env_unset]", extra=""),
        encoding="utf-8",
    )
    argv = ["validate", str(cfg), "--strict", "--no-relation-data"]
    assert main(argv) == 1
    assert "warning: processors.summary.inputs[0].source" in capsys.readouterr().err
    assert main([*argv, "--ignore", "unmapped_input"]) == 0
    assert "0 warnings, 2 silenced" in capsys.readouterr().out
    assert main([*argv, "--ignore", "unmapped_input", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] and out["warnings"] == []
    assert sorted(i["code"] for i in out["silenced"]) == ["env_unset", "unmapped_input"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--ignore", "no_such_code"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "registry",
    [REPO / "routes.yaml", REPO / "examples" / "retail" / "routes.yaml"],
    ids=["nba", "retail"],
)
def test_strict_passes_on_the_example_registries(registry: Path) -> None:
    """validate --strict exits 0 on both shipped example registries (with relation data)."""
    if not registry.exists():
        pytest.fail(f"{registry} is missing")
    assert main(["validate", "--strict", str(registry)]) == 0


def test_every_warning_code_is_documented() -> None:
    """docs/registry.md lists every warning code validate can print."""
    doc = (REPO / "docs" / "registry.md").read_text(encoding="utf-8")
    missing = [c for c in WARNING_CODES if f"`{c}`" not in doc]
    assert missing == []


# ------------------------------------------------------------------ near-miss source names

NEAR = """\
version: 1
{sources}processors:
  a:
    phase: 3
    granularity: date
    inputs: [{{source: {a}}}]
    publishes: mart.a
  b:
    phase: 3
    granularity: date
    inputs: [{{source: {b}}}]
"""


@pytest.mark.parametrize(
    ("a", "b", "sources", "flagged"),
    [
        ("raw.orders", "raw.ordres", "", {"raw.orders", "raw.ordres"}),  # a swap
        ("raw.orders", "raw.order", "", {"raw.orders", "raw.order"}),  # a deletion
        ("raw.orders", "raw.ordersx", "", {"raw.orders", "raw.ordersx"}),  # an insertion
        ("raw.orders", "raw.orderz", "", {"raw.orders", "raw.orderz"}),  # a substitution
        ("raw.orders", "raw.returns", "", set()),  # far apart
        ("raw.sales_v1", "raw.sales_v2", "", set()),  # a version, not a typo
        ("raw.orders", "mart.x", "", {"mart.x"}),  # one edit from the published mart.a
        # declared under sources: never flagged; the other name still is
        ("raw.orders", "raw.ordres", "sources: {raw.ordres: {}}\n", {"raw.orders"}),
        ("raw.orders", "raw.ordres", "sources: {raw.ordres: {}, raw.orders: {}}\n", set()),
    ],
)
def test_near_miss_source_is_an_error_unless_declared(
    a: str, b: str, sources: str, flagged: set[str]
) -> None:
    """An input source one edit from another known source is a near_miss_source error
    naming the other, unless declared under sources:."""
    r = check_config_bytes(NEAR.format(a=a, b=b, sources=sources), with_relations=False)
    near = [i for i in r.issues if i.code == "near_miss_source"]
    assert all(i.severity == "error" for i in near)
    assert {{"a": a, "b": b}[str(i.path[1])] for i in near} == flagged
    for i in near:
        assert "one edit away from" in i.message and "sources:" in i.message


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("abc", "abc", False), ("abc", "abd", True), ("abc", "acb", True), ("abc", "ab", True),
        ("abc", "xabc", True), ("abc", "cba", False), ("abc", "a", False), ("v1", "v2", False),
        ("ab1", "abx", True), ("", "a", True), ("t00300", "t03000", False), ("a1b", "ab1", True),
    ],
)  # fmt: skip
def test_one_edit_apart_matches_a_brute_force_oracle(x: str, y: str, expected: bool) -> None:
    """one_edit_apart agrees with the table (Damerau-Levenshtein 1, digit-for-digit exempt)."""
    assert one_edit_apart(x, y) is expected
    assert one_edit_apart(y, x) is expected


# ------------------------------------------------------------------ indentation errors

BASE = """\
version: 1
entities: {player: {}}
processors:
  p:
    phase: 3
    granularity: player
    inputs:
      - source: a.b
        fields: [x]
      - source: c.d
    publishes: e.f
"""


@pytest.mark.parametrize(
    ("line", "indent", "want_indent"),
    [
        (6, 5, 4),  # a key pushed right: PyYAML breaks on the same line
        (6, 3, 4),  # a key pulled left
        (5, 3, 4),  # PyYAML breaks on the *next* line (6); the moved line is 5
        (9, 9, 8),  # inside a sequence item
        (9, 7, 8),
        (10, 7, 6),  # a sequence dash pushed right
        (10, 5, 6),
        (11, 2, 4),  # parses, but as a processor named 'publishes': a schema error
    ],
)
def test_indentation_error_points_at_the_line_that_moved(
    line: int, indent: int, want_indent: int
) -> None:
    """The error is reported at the line that moved, with a hint naming the column that
    makes the file valid."""
    lines = BASE.splitlines(keepends=True)
    lines[line - 1] = " " * indent + lines[line - 1].lstrip(" ")
    r = check_config_bytes("".join(lines), with_relations=False)
    assert len(r.errors) == 1, r.errors
    err = r.errors[0]
    assert (err.line, err.column) == (line, indent + 1), err.format()
    assert f"hint: line {line} looks mis-indented ({indent} spaces); with {want_indent}," in (
        err.message
    )


def test_tab_indentation_gets_a_hint() -> None:
    """A tab used to indent is named as such."""
    r = check_config_bytes(BASE.replace("    phase: 3", "\tphase: 3"), with_relations=False)
    assert "indented with a tab" in r.errors[0].message and r.errors[0].line == 5


@pytest.mark.parametrize(
    ("strict", "ignore", "code", "summary"),
    [
        ((), (), 0, "valid (1 processors, 0 relations, 1 warning, 1 silenced)"),
        (("--strict",), (), 1, "strict mode fails on 1 warning (1 processors, 0 relations, 1 silenced)"),
        ((), ("--ignore", "unmapped_input"), 0,
         "valid (1 processors, 0 relations, 0 warnings, 2 silenced)"),
        (("--strict",), ("--ignore", "unmapped_input"), 0,
         "valid (1 processors, 0 relations, 0 warnings, 2 silenced)"),
    ],
)  # fmt: skip
def test_validate_summary_says_what_the_exit_code_does(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    strict: tuple[str, ...],
    ignore: tuple[str, ...],
    code: int,
    summary: str,
) -> None:
    """A file's summary line says valid only when validate passes it: with --strict and
    warnings it says strict mode fails on them (the exit code was 1 under "valid")."""
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(
        WARNED.format(box_comment="", topic_comment="  # scoperouter: ignore[env_unset]", extra=""),
        encoding="utf-8",
    )
    assert main(["validate", str(cfg), "--no-relation-data", *strict, *ignore]) == code
    assert capsys.readouterr().out == f"{cfg}: {summary}\n"
