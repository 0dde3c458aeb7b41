"""``scoperouter demo``: the default game day's acceptance numbers, the CLI contract, and
what is read off the session's demo run (its execution log, the cache's also_map cost).

Every test that reads the session's ``demo_run`` lives in this file: the suite distributes
whole files over its workers (``--dist loadfile``), so the demo is computed once, on one
worker (about 45 s on a loaded 2-core machine); tests/test_pytest_config.py checks it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from nba_support import (
    CACHE_ALSO_MAP_COST,
    REPO,
    drop_cache_context_also_map,
    registry,
    relations_for,
    variant,
)

import scoperouter.examples.nba.demo as demo_mod
from demo_support import DemoRun
from scoperouter.cli import main
from scoperouter.examples.nba.demo import relations_from_dir
from scoperouter.examples.nba.harness import run_routed
from scoperouter.examples.nba.processors import ORDER, OUTPUT_SOURCES
from scoperouter.examples.nba.season import generate_season, write_relations
from scoperouter.examples.nba.warehouse import diff_dumps
from scoperouter.execution_log import DEFAULT_LOG_PATH
from scoperouter.execution_log.analysis import ENTITY_LEVEL
from scoperouter.execution_log.reader import read_log
from scoperouter.execution_log.whatif import replay, verify_decisions
from scoperouter.processor_registry.loader import load_config

# An explicit budget for a loaded 2-core machine: whole demo days (about 15 s each idle),
# 4-8x that under load.
pytestmark = pytest.mark.timeout(900)

KEYS = {"seed", "game_date", "events", "outputs_identical", "missed_updates", "date_level",
        "routed", "work_ratio", "single_update", "minimum_entity_rows",
        "minimum_entity_rows_entity_processors", "minimum_entity_rows_end_of_day",
        "routed_vs_minimum", "routed_vs_minimum_entity_processors",
        "routed_vs_end_of_day_minimum", "date_level_dag_entity_rows",
        "work_ratio_vs_date_level_dag", "by_processor"}  # fmt: skip
SINGLE_KEYS = {"date_level_s", "routed_s", "date_level_all_s", "routed_all_s",
               "slowest_processor", "date_level_slowest_processor"}  # fmt: skip
MODE_KEYS = {"processor_runs", "entity_rows", "simulated_seconds"}
PROCESSOR_KEYS = {"granularity", "date_level_runs", "date_level_rows", "routed_runs", "routed_rows",
                  "minimum_rows", "minimum_rows_end_of_day"}  # fmt: skip


def test_demo_json_contract(demo_run: DemoRun) -> None:
    """--json prints exactly the agreed keys, for the default seed and game day."""
    out = demo_run.out
    assert demo_run.rc == 0
    assert set(out) == KEYS
    assert set(out["date_level"]) == MODE_KEYS and set(out["routed"]) == MODE_KEYS
    assert set(out["single_update"]) == SINGLE_KEYS
    assert list(out["by_processor"]) == list(ORDER)
    assert all(set(v) == PROCESSOR_KEYS for v in out["by_processor"].values())
    for mode in ("date_level", "routed"):  # the per-processor figures add up to the totals
        assert (
            sum(v[f"{mode}_runs"] for v in out["by_processor"].values())
            == out[mode]["processor_runs"]
        )
        assert (
            sum(v[f"{mode}_rows"] for v in out["by_processor"].values()) == out[mode]["entity_rows"]
        )
    assert (
        sum(v["minimum_rows"] for v in out["by_processor"].values()) == out["minimum_entity_rows"]
    )
    assert (out["seed"], out["game_date"]) == (2025, "2025-11-19")
    assert out["events"] == demo_run.result.comparison.events >= 25
    assert out["work_ratio"] == pytest.approx(
        out["date_level"]["entity_rows"] / out["routed"]["entity_rows"], abs=0.01
    )
    assert out["routed_vs_minimum"] == pytest.approx(
        out["routed"]["entity_rows"] / out["minimum_entity_rows"], abs=0.01
    )
    assert 0 < out["minimum_entity_rows_entity_processors"] < out["minimum_entity_rows"]
    assert 0 < out["minimum_entity_rows_end_of_day"] < out["minimum_entity_rows"]
    assert out["work_ratio_vs_date_level_dag"] == pytest.approx(
        out["date_level_dag_entity_rows"] / out["routed"]["entity_rows"], abs=0.01
    )
    assert (
        out["routed"]["entity_rows"]
        < out["date_level_dag_entity_rows"]
        < out["date_level"]["entity_rows"]
    )
    assert out["routed_vs_end_of_day_minimum"] == pytest.approx(
        out["routed"]["entity_rows"] / out["minimum_entity_rows_end_of_day"], abs=0.01
    )
    su = out["single_update"]
    assert su["slowest_processor"] in ORDER
    assert su["routed_s"] <= su["routed_all_s"] and su["date_level_s"] <= su["date_level_all_s"]


def test_default_game_day_acceptance(demo_run: DemoRun) -> None:
    """Identical outputs; >= 20x less work (>= 5x against the date-level DAG once per
    update); routed work within 1.5x of the ground-truth minimum (3.15x for entity processors)
    and never below the end-of-day bound; one injury reaches every phase in < 5 s
    routed against >= 30 s date level, and every consumer is done sooner routed."""
    out, res = demo_run.out, demo_run.result
    assert out["outputs_identical"] is True and out["missed_updates"] == 0
    assert out["work_ratio"] >= 20
    # the fair baseline: the date-level DAG once per update (measured 6.26x)
    assert out["work_ratio_vs_date_level_dag"] >= 5
    # entity processors alone (measured 3.11x, 6,153 / 1,978; our own regression guard, not
    # an issue's acceptance, which is the 1.5x overall below. 3.10x, 6,160 / 1,985, while the
    # reference's player_daily_cache read the context's points_line: production's reads no
    # line (player_daily_cache_processor.py:492-508, aggregators/context_aggregator.py:29-39),
    # so the prop moves' 7 cache rows left the routed run and the minimum alike and the ratio
    # rose; the cache's context also_map for the roster expansion (:477-545, routes.yaml)
    # routes no row more on this day. 3.08x before the shot zones' season lookback
    # and the zone defense's league averages, routes.yaml: date scope for a team's form, the legacy
    # report, injured players' teammates whose count of OUT/DOUBTFUL teammates did not move,
    # box-score corrections' teammates (also_map on player_game_summary: 252 rows) whose
    # star count and injured teammates' usage did not move, predictions re-run for features
    # that moved without moving them; 2.64x before the box-score also_map, 3.02x while the
    # reference read own injury status only, so also_map's teammate runs changed nothing;
    # 2.77x before routes.yaml's fields listed production's reads: the upcoming context's
    # player_status, star_teammates_out and game_total, read by production's and the
    # reference's feature store, coordinator and composite factors, add 665 rows, a
    # completion naming one changed_fields list for an injured player's player_status and
    # his teammates' teammates_out; 3.10x while the reference did not read them)
    assert out["routed_vs_minimum_entity_processors"] <= 3.15
    c = res.comparison
    assert c.routed.entity_rows <= 1.5 * c.minimum.rows()
    assert out["routed_vs_minimum"] <= 1.5
    assert c.routed.entity_rows >= c.minimum.rows(per_day=True) > 0
    assert out["single_update"]["routed_s"] < 5
    assert out["single_update"]["date_level_s"] >= 30
    assert out["single_update"]["routed_all_s"] < out["single_update"]["date_level_all_s"]
    assert out["routed"]["simulated_seconds"] < out["date_level"]["simulated_seconds"] / 10


# How long the demo takes (CPU seconds) is bench/demo_cpu.py's figure, not an assertion here:
# a slower machine failed a "< 60 s of CPU" check with every figure of the demo unchanged.


def test_demo_html_and_text(demo_run: DemoRun) -> None:
    """--html writes a self-contained page; the text summary names the key numbers."""
    page = demo_run.html.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert "daily_predictions_exporter" in page and f"{demo_run.out['work_ratio']}x" in page
    text = demo_run.result.text()
    assert "work ratio" in text and "outputs identical: yes" in text
    su = demo_run.out["single_update"]
    assert (
        f"reaches every phase (3-6): {su['date_level_s']:.1f} s -> {su['routed_s']:.1f} s" in text
    )
    assert f"every consumer done (incl. date-level {su['slowest_processor']})" in text
    assert f"{demo_run.out['routed_vs_minimum']:.2f}x" in text
    assert f"{demo_run.out['routed_vs_minimum_entity_processors']:.2f}x" in text


def test_demo_uses_the_packaged_registry_and_logs(demo_run: DemoRun) -> None:
    """Without ./routes.yaml the registry shipped with the package is used (its relation
    data generated from the season); the routed run is logged."""
    assert demo_run.result.routes == demo_mod.PACKAGED_ROUTES
    assert (demo_run.cwd / ".scoperouter" / "execution_log.sqlite").is_file()


def test_packaged_registry_is_the_repository_registry() -> None:
    """The packaged routes.yaml is a byte-for-byte copy of the repository's (after editing
    routes.yaml: cp routes.yaml src/scoperouter/examples/nba/routes.yaml)."""
    assert demo_mod.PACKAGED_ROUTES.read_bytes() == (REPO / "routes.yaml").read_bytes()


@pytest.mark.slow  # a second whole demo (CI's slow step)
def test_demo_same_figures_from_repository_or_package(
    demo_run: DemoRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run in the repository (its routes.yaml and data/relations CSVs) the demo prints the
    same JSON as from the package (relations generated from the season)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        rc = main(["demo", "--json", "--no-log"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out) == demo_run.out


def test_demo_missing_config_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable --config exits 1 with a message."""
    assert main(["demo", "--config", "/nonexistent/routes.yaml"]) == 1
    assert "routes.yaml" in capsys.readouterr().err


def test_relations_for_other_seeds_round_trip(tmp_path: Path) -> None:
    """Relation CSVs written for a non-default seed load back into the same lookups."""
    reg = registry()
    season = generate_season(7)
    write_relations(season, tmp_path)
    loaded, direct = relations_from_dir(reg, tmp_path), relations_for(reg, season)
    g = season.games_on(season.game_date)[0]
    for rel, eid in (
        ("game_teams", g.game_id),
        ("team_opponent", g.home),
        ("team_players", g.home),
        ("player_team", season.rosters[g.home][0]),
    ):
        assert loaded.targets(rel, season.game_date, eid) == direct.targets(
            rel, season.game_date, eid
        )
        assert loaded.targets(rel, season.game_date, eid)


# ------------------------------------------------------------------ README figures
def _squash(text: str) -> str:
    return " ".join(text.split())


def readme_figures(j: dict[str, Any]) -> list[str]:
    """Every README sentence that quotes the default demo day, rebuilt from ``demo --json``
    (compared with runs of whitespace squashed, so the README may wrap lines anywhere)."""
    bp = j["by_processor"]
    date_procs = [v for v in bp.values() if v["granularity"] == "date"]
    su = j["single_update"]
    # one-decimal ratios from the row counts (the JSON's two-decimal rounding of 24.951 would
    # print 24.9 where the demo, from the counts, prints 25.0)
    ratio = j["date_level"]["entity_rows"] / j["routed"]["entity_rows"]
    vs_dag = j["date_level_dag_entity_rows"] / j["routed"]["entity_rows"]
    return [
        f"**The work ratio** ({ratio:.1f}x)",
        f"once per message: {j['date_level']['entity_rows'] / 1e6:.2f} million rows",
        f"would do {j['date_level_dag_entity_rows']:,} rows; routing does "
        f"{vs_dag:.1f}x less than that",
        f"**Routed work is {j['routed_vs_minimum']:.2f}x that minimum**",
        f"Of the minimum's {j['minimum_entity_rows']:,} rows, "
        f"{sum(v['minimum_rows'] for v in date_procs):,} are the two date-granularity processors",
        f"**Processors of entity granularity alone are at {j['routed_vs_minimum_entity_processors']:.2f}x**",
        f"over the day it processes {bp['player_game_summary']['routed_rows']} rows for "
        f"{bp['player_game_summary']['minimum_rows']} changes",
        f"did not ({bp['prediction_coordinator']['routed_rows']} rows for "
        f"{bp['prediction_coordinator']['minimum_rows']} changes)",
        f"Routed work is {j['routed_vs_end_of_day_minimum']:.2f}x that bound",
        f"the daily export alone re-runs {bp['daily_predictions_exporter']['routed_runs']} times",
        f"**A single update** reaches every phase in {su['routed_s']:.1f} s",
        f"so it finishes at {su['routed_all_s']:.1f} s",
        f"work ratio {ratio:.1f}x ({vs_dag:.1f}x against a date-level DAG run once per update)",
        f"routed work {j['routed_vs_minimum']:.2f}x the ground-truth minimum; "
        f"{j['routed_vs_minimum_entity_processors']:.2f}x for entity-granular processors alone; "
        f"{j['routed_vs_end_of_day_minimum']:.2f}x the end-of-day bound",
        f"a single update reaches every phase in {su['routed_s']:.1f} s instead of "
        f"{su['date_level_s']:.0f} s, and every consumer is done in {su['routed_all_s']:.1f} s",
        f"| {j['seed']} (default) | {j['work_ratio']:.2f} | {j['work_ratio_vs_date_level_dag']:.2f} | "
        f"{j['routed_vs_minimum']:.2f} | {j['routed_vs_minimum_entity_processors']:.2f} | "
        f"{j['routed_vs_end_of_day_minimum']:.2f} |",
    ]


def test_readme_transcript_is_the_demo_output(demo_run: DemoRun) -> None:
    """The README's `$ scoperouter demo` transcript is what the demo prints today (run from
    the repository: `registry: routes.yaml`). When the registry or the reference pipeline
    changes, rerun `scoperouter demo` and paste its output."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ scoperouter demo\n", 1)[1].split("\n```", 1)[0]
    res = demo_run.result
    text = res.text().replace(f"registry: {res.routes}", "registry: routes.yaml")
    assert block == text


def test_readme_figures_come_from_demo_json(demo_run: DemoRun) -> None:
    """Each figure the README quotes from the demo day equals `scoperouter demo --json`'s
    (regenerated here, so whoever changes the figures reruns the demo and updates the
    README; the message lists every sentence to update, as it should read)."""
    readme = _squash((REPO / "README.md").read_text(encoding="utf-8"))
    stale = [f for f in readme_figures(demo_run.out) if _squash(f) not in readme]
    assert not stale, "README figures differ from demo --json; they should read:\n" + "\n".join(
        stale
    )


def test_exported_events_are_the_shipped_sample(demo_run: DemoRun) -> None:
    """demo --export-events writes the day's 30 Phase 2 events, in time order, and
    examples/events/game-day.jsonl is that file (regenerate it with the same command)."""
    text = (demo_run.cwd / "events.jsonl").read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    assert len(events) == demo_run.out["events"] == 30
    stamps = [e.get("produced_at") or e.get("timestamp") for e in events]
    assert stamps == sorted(stamps)
    assert text == (REPO / "examples" / "events" / "game-day.jsonl").read_text(encoding="utf-8")


@pytest.mark.slow  # the game day five more times, with faults (CI's slow step)
def test_ledger_doc_transcript_is_the_faults_demo_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/ledger.md's `scoperouter demo --faults` table is what the command prints now."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        assert main(["demo", "--faults", "--no-log"]) == 0
    out = capsys.readouterr().out
    printed = out[out.index("closed loop: ") :].strip()
    doc = (REPO / "docs" / "ledger.md").read_text(encoding="utf-8")
    start = doc.index("closed loop: 10% of runs fail")
    table = doc[start : doc.index("\n```", start)].strip()
    assert printed == table


def test_daily_cache_also_map_cost_on_the_demo_day(demo_run: DemoRun) -> None:
    """What player_daily_cache's also_map (test_daily_cache_roster.py) costs where its gap
    never shows: on the demo's day the same outputs without it, and CACHE_ALSO_MAP_COST more
    routed rows with it, all of them the cache's. The cache's context input lists the fatigue
    columns and age (the reference's stand-ins ``games_last_14``, ``minutes_last_14``), no
    line, and no context completion of the demo names one of them: the input runs nothing,
    with or without the also_map. (98 rows while the reference cache read the context's
    points_line: every prop move then re-ran the player's whole team.) Here, not beside the
    roster tests, so the session's demo run is computed on one worker only."""
    c = demo_run.result.comparison
    stats, wh = run_routed(c.day, registry=variant(drop_cache_context_also_map))
    assert not diff_dumps(c.date_wh.dump(OUTPUT_SOURCES), wh.dump(OUTPUT_SOURCES))
    extra = {
        name: runs_rows[1] - stats.by_processor.get(name, [0, 0])[1]
        for name, runs_rows in c.routed.by_processor.items()
    }
    assert {n: x for n, x in extra.items() if x} == (
        {"player_daily_cache": CACHE_ALSO_MAP_COST} if CACHE_ALSO_MAP_COST else {}
    )
    assert c.routed.entity_rows - stats.entity_rows == CACHE_ALSO_MAP_COST


# ------------------------------------------------------------- the demo's execution log
def test_demo_report_json_covers_every_processor(
    demo_run: DemoRun, routes_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """report --json on the demo's own log shows every processor of the demo, each with
    runs; league_rankings is never recommended entity-level."""
    log = demo_run.cwd / DEFAULT_LOG_PATH
    capsys.readouterr()
    assert main(["report", "--log", str(log), "--config", str(routes_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    procs = {p["processor"]: p for p in out["processors"]}
    reg = load_config(routes_path, with_relations=False).registry
    assert set(procs) == set(reg.processor_names)
    assert all(procs[n]["runs"] > 0 for n in reg.processor_names), {
        n: p["runs"] for n, p in procs.items()
    }
    assert procs["league_rankings"]["recommendation"] != ENTITY_LEVEL


def test_demo_log_replays_exactly(demo_run: DemoRun, routes_path: Path) -> None:
    """The demo's logged events re-planned under its own settings give the logged decisions."""
    cfg = load_config(routes_path)
    data = read_log(demo_run.cwd / DEFAULT_LOG_PATH)
    assert data.events
    assert verify_decisions(data, replay(cfg.registry, cfg.relations, data.events)) == []


@pytest.mark.parametrize("demo_record", [True, False], ids=["demo-log", "other-log"])
def test_report_what_if_on_the_demo_log_needs_no_config(
    demo_run: DemoRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    demo_record: bool,
) -> None:
    """The README's 'scoperouter demo' then 'scoperouter report --what-if ...' works where
    there is no routes.yaml: the log keeps which demo wrote it and report rebuilds that
    registry and relation data (the current settings reproduce every logged decision). A
    log without that record still asks for --config."""
    log = tmp_path / "log.sqlite"
    log.write_bytes((demo_run.cwd / DEFAULT_LOG_PATH).read_bytes())
    if not demo_record:
        with sqlite3.connect(log) as conn:
            conn.execute("DELETE FROM scoperouter_meta WHERE key = 'demo'")
        conn.close()
    monkeypatch.chdir(tmp_path)  # no ./routes.yaml
    capsys.readouterr()
    argv = ["report", "--log", str(log), "--what-if", "max_entities=50", "window.quiet=60s"]
    assert main([*argv, "--json"]) == (0 if demo_record else 1)
    out, err = capsys.readouterr()
    if demo_record:
        wi = json.loads(out)["what_if"]
        assert wi["current_matches_log"]["mismatches"] == 0, wi["current_matches_log"]
        assert wi["current"]["runs"] > 0 and wi["not_replanned"]["events"] == 0
    else:
        assert err == "error: --what-if needs the registry: pass --config routes.yaml\n"
