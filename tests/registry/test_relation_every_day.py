"""``relations.<name>.every_day``: a boolean, with ``from``/``to`` only (an ``inverse_of``
relation inherits it from its base), compiled onto both; and ``relation_missing_days``, the
warning about an ``every_day`` relation's file with dates inside its span that have no
dated row (``validate`` prints it, ``--strict`` fails on it, ``validate.ignore`` silences
it; ``serve`` logs it like every relation-data warning)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from warning_cases import (
    ONE_RELATION_TEMPLATE,
    WARNING_CASE_KEYS,
    warning_cases,
    write_one_relation,
)

from scoperouter.cli import main
from scoperouter.processor_registry.loader import (
    check_config,
    check_config_bytes,
    load_config,
    load_relations,
)
from scoperouter.runtime.reload import log_relation_warnings

ROUTES = ONE_RELATION_TEMPLATE

PARSE_CASES = [
    # (name, on the base, on the inverse, expected error (line, path, message part) or None)
    ("default_false", "", "", None),
    ("true_on_the_base", ", every_day: true", "", None),
    ("false_on_the_base", ", every_day: false", "", None),
    (
        "on_the_inverse",
        "",
        ", every_day: true",
        (5, ("relations", "player_team"), "every_day is inherited"),
    ),
    # false is the default (a registry dumped and read again, as --what-if does, carries
    # it): accepted, and the inverse still inherits its base's
    ("false_on_the_inverse", ", every_day: true", ", every_day: false", None),
    (
        "a_string",
        ", every_day: 'true'",
        "",
        (4, ("relations", "team_players", "every_day"), "valid boolean"),
    ),
    (
        "an_integer",
        ", every_day: 1",
        "",
        (4, ("relations", "team_players", "every_day"), "valid boolean"),
    ),
    (
        "misspelled",
        ", everyday: true",
        "",
        (4, ("relations", "team_players", "everyday"), ""),
    ),
]


@pytest.mark.parametrize(
    ("name", "base", "inverse", "error"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES]
)
def test_every_day_parses(
    tmp_path: Path,
    name: str,
    base: str,
    inverse: str,
    error: tuple[int, tuple[str, ...], str] | None,
) -> None:
    """every_day is a strict boolean on a from/to relation; the inverse inherits, never sets it."""
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "team_players.csv").write_text("date,from,to\n", "utf-8")
    result = check_config_bytes(ROUTES % (base, inverse), base_dir=tmp_path)
    if error is None:
        assert result.valid, result.errors
        assert result.config is not None
        rels = result.config.registry.relations
        want = "every_day: true" in base
        assert (rels["team_players"].every_day, rels["player_team"].every_day) == (want, want)
        return
    line, path, part = error
    assert not result.valid
    assert [(e.line, e.path) for e in result.errors] == [(line, path)]
    assert part in result.errors[0].message


def _days(*days: int) -> str:
    return "".join(f"2025-11-{d:02d},LAL,p1\n" for d in days)


WARN_CASES = [
    # (name, every_day, CSV body, expected (line, message parts) or None)
    ("contiguous", True, _days(19, 20, 21), None),
    ("schedule_like_gap_is_fine", False, _days(19, 21), None),
    ("undated_only", True, ",LAL,p1\n", None),
    ("empty", True, "", None),
    ("one_missing_day", True, _days(19, 21), (2, ["misses 1 day(s)", "2025-11-20;"])),
    (
        "at_the_last_day_before_the_gap",
        True,
        _days(22, 19, 20, 19) + "2025-11-25,BOS,b1\n",
        (4, ["misses 3 day(s)", "2025-11-19..2025-11-25", "2025-11-21, 2025-11-23, 2025-11-24;"]),
    ),
    (
        "first_five_listed",
        True,
        _days(1, 9),
        (
            2,
            [
                "misses 7 day(s)",
                "2025-11-02, 2025-11-03, 2025-11-04, 2025-11-05, 2025-11-06,",
                "(2 more)",
            ],
        ),
    ),
    (
        "undated_rows_fill_no_day",
        True,
        _days(19) + ",LAL,p2\n" + _days(21),
        (2, ["misses 1 day(s)", "2025-11-20"]),
    ),
]


def _write(tmp_path: Path, every_day: bool, body: str, extra: str = "") -> Path:
    return write_one_relation(tmp_path, body, extra, every_day=every_day)


@pytest.mark.parametrize(
    ("name", "every_day", "body", "want"), WARN_CASES, ids=[c[0] for c in WARN_CASES]
)
def test_missing_days_warn(
    tmp_path: Path,
    name: str,
    every_day: bool,
    body: str,
    want: tuple[int, list[str]] | None,
) -> None:
    """One warning per every_day file with holes: how many, the first five, at a file line."""
    result = check_config(_write(tmp_path, every_day, body))
    assert result.valid
    found = [w for w in result.warnings if w.code == "relation_missing_days"]
    if want is None:
        assert found == []
        return
    (w,) = found
    line, parts = want
    assert (Path(w.file or "").name, w.line, w.severity) == ("team_players.csv", line, "warning")
    for part in parts:
        assert part in w.message


@pytest.mark.parametrize(WARNING_CASE_KEYS, warning_cases("relation_missing_days"))
def test_validate_shows_missing_days(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    args: list[str],
    code: int,
    shown: bool,
) -> None:
    """validate prints the warning (file:line), --strict fails on it, an ignore silences it."""
    routes = _write(tmp_path, True, _days(19, 21), extra)
    assert main(["validate", *args, str(routes)]) == code
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'rel' / 'team_players.csv'}:2:" in err) == shown
    assert ("every_day relation misses 1 day(s)" in err) == shown


@pytest.mark.parametrize(
    ("every_day", "logged"), [(True, 1), (False, 0)], ids=["every_day", "schedule_like"]
)
def test_serve_logs_missing_days(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, every_day: bool, logged: int
) -> None:
    """serve's relation-data log (start-up and reload) carries the warning, naming file:line."""
    routes = _write(tmp_path, every_day, _days(19, 21))
    reg = load_config(routes, with_relations=False).registry
    rel = load_relations(reg)
    assert rel.holes("player_team") == ({date(2025, 11, 20)} if every_day else frozenset())
    with caplog.at_level("WARNING", logger="scoperouter.runtime.reload"):
        log_relation_warnings(reg, rel, "start")
    found = [r for r in caplog.records if getattr(r, "code", None) == "relation_missing_days"]
    assert len(found) == logged
    assert all("team_players.csv:2:" in r.getMessage() for r in found)
