"""``scoperouter explain`` and ``replay`` in processes of their own (forked from a server
that imported the CLI once: tests/cli_fork.py): output contracts and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_fork import CliRun, run_cli

REPO = Path(__file__).resolve().parents[2]
RELATIONS = {
    "team_players": ",LAL,lebronjames\n,LAL,anthonydavis\n,BOS,jaysontatum\n",
    "game_teams": "2025-11-19,G1,LAL\n2025-11-19,G1,BOS\n",
    "team_opponent": "2025-11-19,LAL,BOS\n2025-11-19,BOS,LAL\n",
    "player_games": "2025-11-19,lebronjames,G1\n2025-11-21,lebronjames,G2\n",
    "league_teams": "".join(f",{a},{b}\n" for a in ("BOS", "LAL") for b in ("BOS", "LAL")),
}
CANONICAL = {
    "event_id": "e-123",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lebronjames"]},
    "changed_fields": ["injury_status"],
    "correlation_id": "c-9",
    "produced_at": "2025-11-19T18:05:00Z",
}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """routes.yaml of the repo, with its relation data in a temporary directory."""
    d = tmp_path_factory.mktemp("cfg")
    (d / "rel").mkdir()
    for name, rows in RELATIONS.items():
        (d / "rel" / f"{name}.csv").write_text("date,from,to\n" + rows)
    text = (REPO / "routes.yaml").read_text().replace("dir: data/relations", "dir: rel")
    (d / "routes.yaml").write_text(text)
    return d / "routes.yaml"


def cli(*args: str, stdin: str = "", cwd: Path | None = None) -> CliRun:
    return run_cli(args, cwd=cwd or Path.cwd(), budget_s=60, stdin=stdin)


def test_explain_json(config: Path, tmp_path: Path) -> None:
    """explain --json prints the normalised event and one decision per processor, sorted."""
    path = tmp_path / "e.json"
    path.write_text(json.dumps(CANONICAL))
    r = cli("explain", str(path), "--config", str(config), "--as-of", "2025-11-30", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["event"]["event_id"] == "e-123" and out["event"]["game_date"] == "2025-11-19"
    names = [d["processor"] for d in out["decisions"]]
    assert names == sorted(names) and len(names) == 14
    pgs = next(d for d in out["decisions"] if d["processor"] == "player_game_summary")
    assert pgs == {
        "processor": "player_game_summary",
        "action": "run",
        "scope": "entities",
        "entity_type": "player",
        "entity_ids": ["lebronjames"],
        "dates": ["2025-11-19"],
        "reason": "entity_scope",
    }
    assert {tuple(sorted(d)) for d in out["decisions"]} == {tuple(sorted(pgs))}


def test_explain_table_from_stdin(config: Path) -> None:
    """explain - reads stdin and prints a readable table with every column."""
    legacy = {
        "event_type": "raw_data_loaded",
        "source_table": "bdl_player_boxscores",
        "game_date": "2025-11-19",
        "success": True,
        "execution_id": "x1",
    }
    r = cli(
        "explain", "-", "--config", str(config), "--as-of", "2025-11-30", stdin=json.dumps(legacy)
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["PROCESSOR", "ACTION", "SCOPE", "COUNT", "DATES", "REASON"]
    row = next(line.split() for line in lines if line.startswith("team_offense_game_summary"))
    assert row == [
        "team_offense_game_summary",
        "run",
        "date",
        "all",
        "2025-11-19",
        "no_entities_in_event",
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "not_json"),
        ("[1, 2]", "not_an_object"),
        ('{"source": "nba_raw.nbac_injury_report"}', "missing_date"),
        ('{"source": "nba_raw.nbac_injury_report", "game_date": "2025-13-01"}', "invalid_date"),
        (
            '{"source": "s.t", "start_date": "2025-11-03", "end_date": "2025-11-01"}',
            "invalid_date_range",
        ),
        (
            '{"source": "s.t", "game_date": "2025-11-19", "affected_entities": {"players": "x"}}',
            "invalid_field",
        ),
        ('{"source": "s.t", "game_date": "2025-11-19", "changed_fields": [1]}', "invalid_field"),
        ('{"source": "s.t", "game_date": "2025-11-19", "status": "ok"}', "invalid_status"),
    ],
)
def test_explain_bad_event(config: Path, payload: str, reason: str) -> None:
    """A bad event exits 1 with a one-line reason on stderr and no traceback."""
    r = cli("explain", "-", "--config", str(config), stdin=payload)
    assert r.returncode == 1
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert reason in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("payload", "reason"), [("not json", "not_json"), ('{"source": "s.t"}', "missing_date")]
)
def test_explain_bad_event_json(config: Path, payload: str, reason: str) -> None:
    """With --json a bad event also prints a machine-readable error object on stdout."""
    r = cli("explain", "-", "--config", str(config), "--json", stdin=payload)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "invalid_event" and out["reason"] == reason
    assert "Traceback" not in r.stderr


def test_explain_bad_config_json(tmp_path: Path) -> None:
    """With --json an invalid registry prints its positioned issues as JSON on stdout."""
    cfg = tmp_path / "r.yaml"
    cfg.write_text("version: 2\n", encoding="utf-8")
    r = cli("explain", "-", "--config", str(cfg), "--json", stdin="{}")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "invalid_config" and out["issues"][0]["line"] == 1


def test_explain_missing_file(config: Path, tmp_path: Path) -> None:
    """An unreadable EVENT file exits 1 with one line."""
    r = cli("explain", str(tmp_path / "nope.json"), "--config", str(config))
    assert (
        r.returncode == 1
        and len(r.stderr.strip().splitlines()) == 1
        and "Traceback" not in r.stderr
    )


def test_explain_bad_as_of_is_usage_error(config: Path) -> None:
    """An invalid --as-of is a usage error (exit 2)."""
    r = cli("explain", "-", "--config", str(config), "--as-of", "tomorrow", stdin="{}")
    assert r.returncode == 2


def _stream() -> str:
    def e(eid: str, player: str, t: str, **kw: object) -> str:
        return json.dumps(
            {
                **CANONICAL,
                "event_id": eid,
                "affected_entities": {"players": [player]},
                "produced_at": f"2025-11-19T18:00:{t}Z",
                **kw,
            }
        )

    return (
        "\n".join(
            [
                e("e1", "lebronjames", "00"),
                e("e2", "jaysontatum", "05"),
                "{broken",
                e("e3", "anthonydavis", "50", priority="critical"),
                "",
            ]
        )
        + "\n"
    )


def test_replay_json_dry_run(config: Path, tmp_path: Path) -> None:
    """replay coalesces on the virtual clock, reports bad lines by number and exits 1; dry run writes nothing."""
    src = tmp_path / "events.jsonl"
    src.write_text(_stream())
    r = cli(
        "replay",
        str(src),
        "--config",
        str(config),
        "--as-of",
        "2025-11-30",
        "--json",
        "--dry-run",
        cwd=tmp_path,
    )
    assert r.returncode == 1
    assert "line 3" in r.stderr and "not_json" in r.stderr and "Traceback" not in r.stderr
    error, *triggers = [json.loads(line) for line in r.stdout.splitlines()]  # the error first
    assert (error["error"], error["reason"], error["line"]) == ("invalid_event", "not_json", 3)
    pgs = [t for t in triggers if t["processor"] == "player_game_summary"]
    # quiet 10s: e1+e2 fire at 18:00:15, the critical e3 fires at once at 18:00:50
    assert [(t["entity_ids"], t["caused_by"], t["fired_at"]) for t in pgs] == [
        (["jaysontatum", "lebronjames"], ["e1", "e2"], "2025-11-19T18:00:15Z"),
        (["anthonydavis"], ["e3"], "2025-11-19T18:00:50Z"),
    ]
    assert pgs[1]["priority"] == "critical"
    assert not (tmp_path / ".scoperouter").exists()


def test_replay_writes_outbox(config: Path, tmp_path: Path) -> None:
    """Without --dry-run replay appends every printed trigger to the outbox file."""
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(_stream().splitlines()[:2]) + "\n")
    box = tmp_path / "box" / "out.jsonl"
    r = cli(
        "replay",
        str(src),
        "--config",
        str(config),
        "--as-of",
        "2025-11-30",
        "--outbox",
        str(box),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    written = [json.loads(line) for line in box.read_text().splitlines()]
    # every processor reading the injury report (routes.yaml: production's readers), a trigger
    # per date for those with a lookback (up to --as-of)
    readers = {
        "player_game_summary",
        "upcoming_team_game_context",
        "upcoming_player_game_context",
        "ml_feature_store",
        "prediction_coordinator",
        "player_prediction_exporter",
    }
    assert len(written) == len(r.stdout.splitlines()) > len(readers)
    assert {t["processor"] for t in written} == readers
    assert {t["processor"] for t in written if t["end_date"] == "2025-11-19"} == readers


@pytest.mark.parametrize(
    ("flags", "logged"),
    [
        ((), True),
        (("--no-log",), False),
        (("--dry-run",), False),
    ],
    ids=["log", "no-log", "dry-run"],
)
def test_replay_execution_log(
    config: Path, tmp_path: Path, flags: tuple[str, ...], logged: bool
) -> None:
    """replay appends its decisions and fired triggers to --log, which report then reads (one
    run per trigger, every triggered processor listed); --no-log and --dry-run write no log."""
    src = tmp_path / "events.jsonl"
    src.write_text(_stream())
    log = tmp_path / "logs" / "x.sqlite"
    r = cli(
        "replay",
        str(src),
        "--config",
        str(config),
        "--as-of",
        "2025-11-30",
        "--json",
        "--log",
        str(log),
        *flags,
        cwd=tmp_path,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr  # line 3 of the stream is broken
    error, *triggers = [json.loads(line) for line in r.stdout.splitlines()]  # line 3's error
    assert error["line"] == 3 and triggers and not any("error" in t for t in triggers)
    assert log.exists() is logged
    if not logged:
        return
    rep = cli("report", "--log", str(log), "--config", str(config), "--json", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    out = json.loads(rep.stdout)
    assert out["summary"]["events"] == 3 and out["summary"]["runs"] == len(triggers)
    runs = {p["processor"]: p["runs"] for p in out["processors"] if p["runs"]}
    want: dict[str, int] = {}
    for t in triggers:
        want[t["processor"]] = want.get(t["processor"], 0) + 1
    assert runs == want
