"""``scoperouter test``: the shipped route tests pass, a broken expectation fails with a
readable diff, JUnit XML is accepted by a JUnit parser, and a bad test file is a positioned
error, never a traceback."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml

from scoperouter.cli import main
from scoperouter.examples.nba.demo import PACKAGED_ROUTES
from scoperouter.examples.nba.season import (
    DEFAULT_GAME_DATE,
    DEFAULT_SEED,
    generate_season,
    write_relations,
)

REPO = Path(__file__).resolve().parents[2]
NBA_TESTS = REPO / "routes.tests.yaml"
RETAIL = REPO / "examples" / "retail"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["test", *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("target", [NBA_TESTS, RETAIL], ids=["nba", "retail"])
def test_shipped_route_tests_pass(capsys: pytest.CaptureFixture[str], target: Path) -> None:
    """The NBA registry's and the retail example's route tests pass (exit 0, no failure)."""
    rc, out, _ = run(capsys, str(target), "--json")
    res = json.loads(out)
    assert rc == 0 and res["ok"], out
    assert res["failed"] == 0 and res["errors"] == 0 and res["tests"] >= 8


def test_default_discovery_is_the_current_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without PATH, ./routes.tests.yaml is run against ./routes.yaml."""
    monkeypatch.chdir(REPO)
    rc, out, _ = run(capsys)
    assert rc == 0, out
    assert out.splitlines()[-1].endswith("in 1 file)")


def test_packaged_registry_passes_the_same_route_tests(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The NBA registry shipped in the package, with relation data generated from the default
    season (as the demo does), passes the repository's route tests."""
    write_relations(
        generate_season(DEFAULT_SEED, DEFAULT_GAME_DATE), tmp_path / "data" / "relations"
    )
    shutil.copy(PACKAGED_ROUTES, tmp_path / "routes.yaml")
    rc, out, _ = run(capsys, str(NBA_TESTS), "--config", str(tmp_path / "routes.yaml"))
    assert rc == 0, out


# A broken expectation (old -> new in routes.tests.yaml) and the lines its diff must show.
BROKEN = [
    pytest.param(
        "entity_ids: [LAL]}   # players reach their team",
        "entity_ids: [BOS, LAL]}",
        [
            "routes.tests.yaml:67: one player's injury update",
            "upcoming_team_game_context: entity_ids",
            "- expected: [BOS, LAL]",
            "+ actual:   [LAL]",
            "missing:  BOS",
        ],
        id="entity_ids",
    ),
    pytest.param(
        "dates: [2025-11-15, 2025-11-16, 2025-11-17, 2025-11-18, 2025-11-19]}   # his last 20",
        "dates: [2025-11-15, 2025-11-16, 2025-11-18, 2025-11-19]}   # his last 20",
        ["player_shot_zone_analysis: dates", "extra:    2025-11-17"],
        id="dates",
    ),
    pytest.param(
        "upcoming_team_game_context: {action: skip, reason: irrelevant_fields}\n\n  - name: a game",
        "upcoming_team_game_context: {action: run}\n\n  - name: a game",
        ["upcoming_team_game_context: action: expected run, got skip"],
        id="action",
    ),
    pytest.param(
        "league_rankings: {action: run, scope: date, reason: date_granularity}",
        "league_rankings: {action: run, scope: date, reason: fallback_threshold}",
        ["league_rankings: reason: expected fallback_threshold, got date_granularity"],
        id="reason",
    ),
    pytest.param(
        "      team_offense_game_summary: run\n      team_defense_game_summary: run\n    only: true",
        "      team_offense_game_summary: run\n    only: true",
        ["team_defense_game_summary: action: expected skip, got run (no_entities_in_event)"],
        id="only",
    ),
    pytest.param(
        "player_shot_zone_analysis: {hop: 2, entity_ids: [lebronjames]}",
        "player_shot_zone_analysis: {hop: 3, entity_ids: [lebronjames]}",
        ["cascade player_shot_zone_analysis: hop: expected 3, got [2]"],
        id="cascade-hop",
    ),
    pytest.param(
        "team_defense_zone_analysis: skip",
        "team_defense_zone_analysis: run",
        ["cascade team_defense_zone_analysis: action: expected run, got skip"],
        id="cascade-reach",
    ),
    pytest.param(
        "player_game_summary: {scope: entities, entity_ids: [lebronjames]}",
        "player_game_summary: {scope: entities, entity_ids: [stephencurry]}",
        ["events[0]: event e-124", "events[1]: event u-1", "missing:  stephencurry"],
        id="each-event",
    ),
]


@pytest.mark.parametrize(("old", "new", "shown"), BROKEN)
def test_broken_expectation_fails_with_a_readable_diff(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    old: str,
    new: str,
    shown: list[str],
) -> None:
    """One wrong expectation: exit 1, one FAIL naming the case's line, and a diff that says
    what was expected, what the planner decided and what differs."""
    text = NBA_TESTS.read_text(encoding="utf-8")
    assert text.count(old) == 1
    (tmp_path / "routes.tests.yaml").write_text(text.replace(old, new), encoding="utf-8")
    rc, out, _ = run(
        capsys, str(tmp_path / "routes.tests.yaml"), "--config", str(REPO / "routes.yaml")
    )
    assert rc == 1
    assert out.count("FAIL ") == 1, out
    for line in shown:
        assert line in out, out
    assert "1 failed" in out.splitlines()[-1]


def test_junit_xml_is_read_by_a_junit_parser(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--junit writes JUnit XML that junitparser reads: one suite per file, a case per test,
    the failure's message and diff on the failing case, an error for a file that does not load."""
    text = NBA_TESTS.read_text(encoding="utf-8").replace(
        "entity_ids: [LAL]}   # players reach their team", "entity_ids: [BOS]}"
    )
    (tmp_path / "routes.tests.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "tests" / "routes").mkdir(parents=True)
    (tmp_path / "tests" / "routes" / "bad.yaml").write_text("tests:\n  - name: x\n    evnt: {}\n")
    shutil.copy(RETAIL / "routes.tests.yaml", tmp_path / "tests" / "routes" / "retail.yaml")
    junit = tmp_path / "out" / "route-tests.xml"
    rc, _, _ = run(
        capsys, str(tmp_path), "--config", str(REPO / "routes.yaml"), "--junit", str(junit)
    )
    assert rc == 1
    xml = JUnitXml.fromfile(str(junit))
    suites = {s.name: s for s in xml}
    assert set(suites) == {
        str(tmp_path / "routes.tests.yaml"),
        str(tmp_path / "tests/routes/bad.yaml"),
        str(tmp_path / "tests/routes/retail.yaml"),
    }
    nba = suites[str(tmp_path / "routes.tests.yaml")]
    shipped = text.count("\n  - name: ")  # the cases of routes.tests.yaml
    assert nba.tests == shipped and nba.failures == 1 and nba.errors == 0
    failed = [c for c in nba if not c.is_passed]
    assert [c.name for c in failed] == [
        "one player's injury update runs that player in every reader, and his team"
    ]
    (failure,) = failed[0].result
    assert isinstance(failure, Failure) and failure.message == "1 mismatch"
    assert "- expected: [BOS]" in (failure.text or "")
    bad = suites[str(tmp_path / "tests/routes/bad.yaml")]
    (err,) = next(iter(bad)).result
    assert isinstance(err, Error) and "3:5" in (err.text or "")
    # the retail file was tested against --config (the NBA registry): its processors are unknown
    assert suites[str(tmp_path / "tests/routes/retail.yaml")].errors == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "1" and root.get("errors") == "2"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("tests:\n  - name: x\n    evnt: {}\n", ":3:5: error: tests[0].evnt", "unknown key 'evnt'"),
        ("tests: []\n", ":1:1: error: tests", "at least 1 item"),
        (
            "as_of: 2025-11-19\ntests:\n  - name: x\n    event: {source: nba_raw.nbac_injury_report, game_date: 2025-11-19}\n"
            "    expect: {player_game_sumary: run}\n",
            ":5:14: error: tests[0].expect.player_game_sumary",
            "did you mean 'player_game_summary'?",
        ),
        (
            "tests:\n  - name: x\n    event: {source: nba_raw.nbac_injury_report}\n    expect: {player_game_summary: run}\n",
            ":3:5: error: tests[0].event",
            "invalid event: missing_date",
        ),
        (
            "tests:\n  - name: x\n    event: nope.json\n    expect: {player_game_summary: run}\n",
            ":3:12: error: tests[0].event",
            "cannot read nope.json",
        ),
        (
            "tests:\n  - name: x\n    event: {}\n    events: []\n    expect: {player_game_summary: run}\n",
            ":2:5: error: tests[0]",
            "exactly one of 'event' and 'events'",
        ),
        ("tests:\n  - name: x\n  event: {}\n", ":3:3: error:", "YAML syntax error"),
    ],
    ids=[
        "unknown-key",
        "no-tests",
        "unknown-processor",
        "invalid-event",
        "missing-file",
        "event-and-events",
        "yaml",
    ],
)
def test_bad_test_file_is_a_positioned_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, where: str, message: str
) -> None:
    """A test file that does not load: exit 1, FILE:LINE:COL and the YAML path, no traceback."""
    f = tmp_path / "routes.tests.yaml"
    f.write_text(text, encoding="utf-8")
    rc, out, err = run(capsys, str(f), "--config", str(REPO / "routes.yaml"))
    assert rc == 1
    assert "Traceback" not in out + err
    line = next(x for x in out.splitlines() if ": error: " in x)
    assert f"{f}{where}" in line, out
    assert message in line, out


def test_no_route_tests_found_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A directory with no routes.tests.yaml nor tests/routes/*.yaml: exit 1, saying what it looked for."""
    rc = main(["test", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and "no route tests" in err and "routes.tests.yaml" in err


def test_registry_is_the_nearest_routes_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """tests/routes/*.yaml without config: runs against the routes.yaml two levels up."""
    shutil.copytree(RETAIL, tmp_path / "repo")
    (tmp_path / "repo" / "tests" / "routes").mkdir(parents=True)
    moved = (tmp_path / "repo" / "routes.tests.yaml").read_text(encoding="utf-8")
    (tmp_path / "repo" / "routes.tests.yaml").unlink()
    (tmp_path / "repo" / "tests" / "routes" / "retail.yaml").write_text(
        moved.replace("events/sales_correction.json", "../../events/sales_correction.json"),
        encoding="utf-8",
    )
    rc, out, _ = run(capsys, str(tmp_path / "repo"), "-v")
    assert rc == 0, out
    assert out.count("ok   ") == 8


def test_as_of_option_overrides_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    """--as-of replaces each case's as_of: an earlier one cuts the lookback dates the retail
    cases expect, and only the cases that depend on them fail."""
    rc, out, _ = run(capsys, str(RETAIL), "--as-of", "2026-03-03", "--json")
    res = json.loads(out)
    assert rc == 1
    failed = {r["name"] for r in res["results"] if r["status"] == "failed"}
    assert failed == {
        "a refund reaches its store and the members who shopped there, over their next visits",
        "a member's tier change reaches the member's next three visits (occurrences lookback)",
        "a store's sales reach the weekly ranking for seven dates, up to as_of",
        "one refund cascades to the members' offers and the ranking, never to stock",
    }
    assert all(e["as_of"] == "2026-03-03" for r in res["results"] for e in r["events"])


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("ctrl \x01 char", "ctrl \\x01 char"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("tab\tkept", "tab\tkept"),
    ],
)
def test_junit_xml_parses_whatever_a_case_is_named(name: str, written: str) -> None:
    """A case name with a character XML 1.0 cannot hold is written as its Python escape:
    the file parses (a YAML name "\\x01" made a file no JUnit reader accepted)."""
    from scoperouter.routetests.output import CaseResult, to_junit

    xml = to_junit([CaseResult(file="t.tests.yaml", line=3, name=name, runs=())], [])
    (case,) = ET.fromstring(xml.encode()).iter("testcase")
    assert case.get("name") == written
