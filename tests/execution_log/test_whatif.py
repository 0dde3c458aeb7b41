"""``report --what-if``: re-planning the logged events, exactly and under other settings."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest
from logsupport import one_processor_registry

from scoperouter.cli import main
from scoperouter.errors import ConfigError
from scoperouter.execution_log.reader import read_log
from scoperouter.execution_log.whatif import (
    Replay,
    apply_what_if,
    logged_decisions,
    parse_what_if,
    replay,
    summarize,
    verify_decisions,
    what_if,
)
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.relations import InMemoryRelations


def test_replay_reproduces_logged_decisions(
    game_day_log: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Under the log's own settings every logged decision comes back identical, and so do
    the dispatched triggers."""
    data = read_log(game_day_log)
    r = replay(registry, relations, data.events)
    assert verify_decisions(data, r) == []
    logged = logged_decisions(data)
    skipped = sum(e.skipped for e in data.events)  # aggregated on the event rows
    assert skipped > 0
    assert sum(len(v) for v in logged.values()) + skipped == len(data.events) * len(
        registry.processor_names
    )
    assert {t.trigger_id for t, _ in r.triggers} == {x.trigger_id for x in data.dispatches}
    fired_at = {x.trigger_id: x.decided_at for x in data.dispatches}
    assert all(
        fired_at[t.trigger_id] is not None and fired_at[t.trigger_id].timestamp() == when  # type: ignore[union-attr]
        for t, when in r.triggers
    )


def test_replay_detects_other_settings(
    game_day_log: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Re-planning under different settings is reported as a mismatch (the check can fail)."""
    data = read_log(game_day_log)
    other = compile_registry(apply_what_if(registry.spec, {"max_entities": "5"}))
    diffs = verify_decisions(data, replay(other, relations, data.events))
    assert diffs and all("replanned" in d for d in diffs)


def _summary(
    registry: CompiledRegistry, relations: InMemoryRelations, log: Path, changes: dict[str, str]
) -> dict[str, Any]:
    return what_if(registry, relations, read_log(log), changes)


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        # a lower threshold: more date runs and more entity rows processed
        (
            {"max_entities": "5"},
            lambda c, w: w["date_runs"] > c["date_runs"] and w["entity_rows"] > c["entity_rows"],
        ),
        # a shorter quiet period: less coalescing (more runs), lower latency
        (
            {"window.quiet": "1s"},
            lambda c, w: w["runs"] > c["runs"] and w["latency_s"]["mean"] < c["latency_s"]["mean"],
        ),
        # a longer quiet period (max_wait follows): fewer or equal runs, higher latency
        (
            {"window.quiet": "10m"},
            lambda c, w: w["runs"] <= c["runs"] and w["latency_s"]["mean"] > c["latency_s"]["mean"],
        ),
        # the log's own settings: identical figures
        ({"player_game_summary.max_entities": "150"}, lambda c, w: c == w),
    ],
)
def test_what_if_side_by_side(
    game_day_log: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    changes: dict[str, str],
    check: Any,
) -> None:
    """The what-if figures move in the direction the setting implies."""
    s = _summary(registry, relations, game_day_log, changes)
    assert s["current_matches_log"]["mismatches"] == 0
    assert check(s["current"], s["what_if"]), (s["current"], s["what_if"])


def test_processor_prefixed_key_changes_only_that_processor(registry: CompiledRegistry) -> None:
    """PROCESSOR.max_entities changes one processor; a bare key changes defaults and all."""
    one = apply_what_if(registry.spec, {"player_game_summary.max_entities": "7"})
    assert one.processors["player_game_summary"].max_entities == 7
    assert (
        one.processors["team_defense_game_summary"].max_entities
        == registry.spec.processors["team_defense_game_summary"].max_entities
    )
    every = apply_what_if(registry.spec, {"max_entities": "7"})
    assert every.defaults.max_entities == 7
    assert {p.max_entities for p in every.processors.values()} == {7}


@pytest.mark.parametrize(
    ("changes", "quiet", "max_wait"),
    [
        ({"window.quiet": "5m"}, "5m", "5m"),  # max_wait follows a longer quiet
        ({"window.max_wait": "5s"}, "5s", "5s"),  # quiet follows a shorter max_wait
        ({"window.quiet": "1s", "window.max_wait": "9m"}, "1s", "9m"),
    ],
)
def test_window_changes_stay_valid(
    registry: CompiledRegistry, changes: dict[str, str], quiet: str, max_wait: str
) -> None:
    """Window changes keep max_wait >= quiet for every processor and the defaults."""
    spec = apply_what_if(registry.spec, changes)
    windows = [spec.defaults.window] + [
        p.window for p in spec.processors.values() if p.window is not None
    ]
    assert {(w.quiet, w.max_wait) for w in windows} == {(quiet, max_wait)}


@pytest.mark.parametrize(
    "items",
    [
        ["max_entities"],
        ["=5"],
        ["max_entities=abc"],
        ["max_entities=0"],
        ["window.quiet=soon"],
        ["lookback=3"],
        ["nope.max_entities=3"],
    ],
)
def test_bad_what_if_is_a_config_error(registry: CompiledRegistry, items: list[str]) -> None:
    """Malformed or unknown what-if settings raise ConfigError (CLI exit 1)."""
    with pytest.raises(ConfigError):
        apply_what_if(registry.spec, parse_what_if(items))


def test_cli_what_if(
    game_day_log: Path, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """report --what-if prints current and what-if figures side by side, text and JSON."""
    assert (
        main(
            [
                "report",
                "--log",
                str(game_day_log),
                "--config",
                str(config_path),
                "--json",
                "--what-if",
                "max_entities=5",
                "window.quiet=1m",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["what_if"]["changes"] == {"max_entities": "5", "window.quiet": "1m"}
    assert out["what_if"]["current_matches_log"]["mismatches"] == 0
    assert (
        main(
            [
                "report",
                "--log",
                str(game_day_log),
                "--config",
                str(config_path),
                "--what-if",
                "window.quiet=1s",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert (
        "what-if window.quiet=1s" in text
        and "current settings reproduce the logged decisions" in text
    )
    assert (
        main(
            [
                "report",
                "--log",
                str(game_day_log),
                "--config",
                str(config_path),
                "--what-if",
                "bogus=1",
            ]
        )
        == 1
    )


@pytest.mark.parametrize(("since", "left_out"), [(None, 0), ("2025-11-18", 0), ("2025-11-19", 2)])
def test_what_if_since_names_the_runs_of_earlier_events_it_does_not_replan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], since: str | None, left_out: int
) -> None:
    """A correction dated 11-18 with a 2-day lookback runs 11-18..11-20; --since 11-19
    counts two of its runs, which the what-if cannot re-plan (its event is before it): said
    in the text and --json, not 0 runs labelled 'current settings reproduce the log'."""
    one_processor_registry(tmp_path, players=4, lookback="{days: 2}")
    event = {"event_id": "late-fix", "source": "raw.stats", "game_date": "2025-11-18",
             "affected_entities": {"players": ["p1", "p2"]},
             "produced_at": "2025-11-20T09:00:00Z"}  # fmt: skip
    (tmp_path / "ev.jsonl").write_text(json.dumps(event) + "\n")
    cfg, log = str(tmp_path / "routes.yaml"), str(tmp_path / "log.sqlite")
    assert main(["replay", str(tmp_path / "ev.jsonl"), "--config", cfg, "--log", log,
                 "--outbox", str(tmp_path / "ob.jsonl")]) == 0  # fmt: skip
    capsys.readouterr()
    argv = ["report", "--config", cfg, "--log", log, "--what-if", "max_entities=1"]
    argv += ["--since", since] if since else []
    assert main([*argv, "--json"]) == 0
    wi = json.loads(capsys.readouterr().out)["what_if"]
    assert wi["not_replanned"] == {"events": 1 if left_out else 0, "runs": left_out}
    assert wi["current"]["runs"] == (0 if left_out else 3)
    assert main(argv) == 0
    text = capsys.readouterr().out
    note = "2 logged run(s) of 1 event(s) dated before --since (a date range by its start date)"
    assert (note in text) is bool(left_out)


@pytest.mark.parametrize(
    ("since", "changed_config", "says"),
    [
        (None, False, ["current settings reproduce the logged decisions"]),
        ("2025-11-19", False, ["note: 2 logged run(s) of 1 event(s) dated before --since",
                               "current settings reproduce the logged decisions they re-plan"]),
        (None, True, ["note: 1 logged decisions differ under the current settings",
                      "warning: report --what-if does not model the closed loop"]),
    ],
)  # fmt: skip
def test_what_if_html_carries_the_text_notes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    since: str | None,
    changed_config: bool,
    says: list[str],
) -> None:
    """The --html what-if section says what the text says under its table (events not
    re-planned, decisions not reproduced, the loop not modelled); no figure is 'None' in
    either (a latency with no value is 'n/a')."""
    routes = one_processor_registry(tmp_path, players=4, lookback="{days: 2}")
    event = {"event_id": "late-fix", "source": "raw.stats", "game_date": "2025-11-18",
             "affected_entities": {"players": ["p1", "p2"]},
             "produced_at": "2025-11-20T09:00:00Z"}  # fmt: skip
    (tmp_path / "ev.jsonl").write_text(json.dumps(event) + "\n")
    cfg, log = str(routes), str(tmp_path / "log.sqlite")
    assert main(["replay", str(tmp_path / "ev.jsonl"), "--config", cfg, "--log", log,
                 "--outbox", str(tmp_path / "ob.jsonl")]) == 0  # fmt: skip
    if changed_config:  # the log's 2-player runs are date runs now, and serve would retry
        text = routes.read_text().replace("max_entities: 100", "max_entities: 1\n  run_retries: 1")
        routes.write_text(text)
    capsys.readouterr()
    argv = ["report", "--config", cfg, "--log", log, "--what-if", "max_entities=3"]
    argv += ["--since", since] if since else []
    assert main(argv) == 0
    text = capsys.readouterr().out
    tail = text[text.index("\nwhat-if ") :].splitlines()
    assert "None" not in "\n".join(tail)
    notes = [x.strip() for x in tail if x.startswith(("  note:", "  current ", "  warning:"))]
    assert len(notes) == len(says) and all(
        n.startswith(x) for n, x in zip(notes, says, strict=True)
    )
    page = tmp_path / "r.html"
    assert main([*argv, "--html", str(page)]) == 0
    section = page.read_text(encoding="utf-8").split("<h2>What if", 1)[1].split("<h2>", 1)[0]
    for note in notes:
        assert html.escape(note) in section, note
    assert "None" not in section


QSUM = (
    "  qsum:\n    phase: 3\n    granularity: player\n"
    "    inputs: [{source: raw.stats}]\n    publishes: analytics.qsum\n"
)


def _replayed_log(tmp_path: Path, events: list[dict[str, Any]], extra: str = "") -> Path:
    """``tmp_path/log.sqlite``: ``events`` replayed under ``tmp_path/routes.yaml``, the
    one-processor registry (4 players) with ``extra`` appended to its processors."""
    routes = one_processor_registry(tmp_path, players=4)
    routes.write_text(routes.read_text() + extra)
    (tmp_path / "ev.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    log = tmp_path / "log.sqlite"
    argv = ["replay", str(tmp_path / "ev.jsonl"), "--config", str(routes), "--log", str(log)]
    assert main([*argv, "--outbox", str(tmp_path / "ob.jsonl")]) == 0
    return log


def _stats(event_id: str, day: str, players: list[str], produced_at: str) -> dict[str, Any]:
    return {"event_id": event_id, "source": "raw.stats", "game_date": day,
            "affected_entities": {"players": players}, "produced_at": produced_at}  # fmt: skip


@pytest.mark.parametrize(("removed", "mismatches"), [(False, 0), (True, 2)])
def test_a_processor_removed_since_the_log_is_a_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], removed: bool, mismatches: int
) -> None:
    """A logged processor that routes.yaml no longer has (no decision re-planned) is a
    mismatch, not silently left out of the comparison."""
    log = _replayed_log(
        tmp_path,
        [_stats("e1", "2025-11-18", ["p1", "p2"], "2025-11-18T09:00:00Z"),
         _stats("e2", "2025-11-19", ["p3"], "2025-11-19T09:00:00Z")],
        extra=QSUM,
    )  # fmt: skip
    routes = tmp_path / "routes.yaml"
    if removed:
        routes.write_text(routes.read_text().replace(QSUM, ""))
    capsys.readouterr()
    argv = ["report", "--config", str(routes), "--log", str(log), "--what-if", "max_entities=1"]
    assert main([*argv, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["what_if"]["current_matches_log"]
    assert got["mismatches"] == mismatches
    assert all("qsum" in x for x in got["examples"])
    assert main(argv) == 0
    says = "current settings reproduce the logged decisions" in capsys.readouterr().out
    assert says is not removed


def test_events_sharing_an_id_on_different_dates_are_two_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two events sharing an event_id on dates two days apart (the log keeps both, keyed by
    date and id): the report counts two events, the what-if times each from its own
    decision (latency 0 s, windows of 0 s) and finds the current settings reproduce the log."""
    log = _replayed_log(
        tmp_path,
        [_stats("daily", "2025-11-18", ["p1", "p2"], "2025-11-18T09:00:00Z"),
         _stats("daily", "2025-11-19", ["p3"], "2025-11-20T09:00:00Z")],
        extra=QSUM,
    )  # fmt: skip
    capsys.readouterr()
    argv = ["report", "--config", str(tmp_path / "routes.yaml"), "--log", str(log)]
    assert main([*argv, "--json", "--what-if", "max_entities=100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["events"] == 2
    wi = out["what_if"]
    assert wi["current_matches_log"] == {"mismatches": 0, "examples": []}
    assert wi["current"]["latency_s"] == {"mean": 0.0, "p95": 0.0, "max": 0.0}
    data = read_log(log)
    assert sorted(logged_decisions(data)) == [("daily", "2025-11-18"), ("daily", "2025-11-19")]


RANK = (
    "  rank:\n    phase: 4\n    granularity: date\n"
    "    inputs: [{source: raw.stats}]\n    publishes: analytics.rank\n"
)


@pytest.mark.parametrize(("extra", "unsized"), [("", 0), (RANK, 3)])
def test_what_if_counts_the_runs_of_unknown_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, unsized: int
) -> None:
    """A date-granularity processor's full-date runs in a log without completions have no
    known size: 'entity rows processed' leaves them out, and --json, the text and --html
    say how many (nothing when every run is sized)."""
    log = _replayed_log(
        tmp_path,
        [_stats(f"e{i}", "2025-11-19", [f"p{i}"], f"2025-11-19T09:00:{i}0Z") for i in range(3)],
        extra=extra,
    )
    capsys.readouterr()
    argv = ["report", "--config", str(tmp_path / "routes.yaml"), "--log", str(log)]
    argv += ["--what-if", "max_entities=1"]
    assert main([*argv, "--json"]) == 0
    wi = json.loads(capsys.readouterr().out)["what_if"]
    assert wi["current"]["unsized_runs"] == wi["what_if"]["unsized_runs"] == unsized
    assert wi["current"]["processors"]["psum"]["unsized_runs"] == 0
    assert wi["current"]["entity_rows"] == 3.0
    page = tmp_path / "r.html"
    assert main([*argv, "--html", str(page)]) == 0
    text = capsys.readouterr().out
    section = page.read_text(encoding="utf-8").split("<h2>What if", 1)[1].split("<h2>", 1)[0]
    row = f"  runs of unknown size{unsized:>16}{unsized:>12}"
    assert (row in text) is bool(unsized)
    says = "not in entity rows processed"
    assert (says in text) is (says in section) is bool(unsized)
    assert ("runs of unknown size</td><td>3</td><td>3</td>" in section) is bool(unsized)


@pytest.mark.parametrize(
    ("latencies", "p95"),
    [
        ([5.0], 5.0),
        ([1.0, 2.0], 2.0),  # ceil(1.9) = 2nd smallest
        ([1.0] * 19 + [1000.0], 1.0),  # ceil(19.0) = 19th: not the maximum
        ([float(i) for i in range(100, 0, -1)], 95.0),  # ceil(95.0) = 95th
        ([float(i) for i in range(1, 22)], 20.0),  # ceil(19.95) = 20th of 21
    ],
)
def test_p95_is_the_nearest_rank(
    registry: CompiledRegistry, relations: InMemoryRelations, latencies: list[float], p95: float
) -> None:
    """The what-if latency p95 is the nearest rank: the ceil(0.95 n)-th smallest value."""
    got = summarize(registry, relations, Replay({}, [], latencies))
    assert got["latency_s"]["p95"] == p95


@pytest.mark.parametrize(
    ("since", "left_out"),
    [("2025-11-17", 0), ("2025-11-19", 2), ("2025-11-21", 0)],
)
def test_a_date_range_starting_before_since_is_dated_by_its_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], since: str, left_out: int
) -> None:
    """A date range 11-17..11-20 is dated by its start (as the log's events table and every
    --since cut): with --since inside it the range is not re-planned, and the note says a
    range counts by its start date rather than calling it plainly 'dated before --since'."""
    event = {"event_id": "rng", "source": "raw.stats", "start_date": "2025-11-17",
             "end_date": "2025-11-20", "affected_entities": {"players": ["p1"]},
             "produced_at": "2025-11-20T09:00:00Z"}  # fmt: skip
    log = _replayed_log(tmp_path, [event])
    capsys.readouterr()
    argv = ["report", "--config", str(tmp_path / "routes.yaml"), "--log", str(log)]
    argv += ["--since", since, "--what-if", "max_entities=1"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    if since > "2025-11-20":
        assert out["empty"] is True
        return
    assert out["what_if"]["not_replanned"] == {"events": 1 if left_out else 0, "runs": left_out}
    assert main(argv) == 0
    text = capsys.readouterr().out
    note = (
        f"note: {left_out} logged run(s) of 1 event(s) dated before --since (a date range by "
        "its start date) are not re-planned"
    )
    assert (note in text) is bool(left_out)
