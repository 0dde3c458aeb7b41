"""README's daemon figures are ``bench/daemon.py``'s rendering of a saved run
(``bench/results/daemon.json``): they come from the benchmark's output, not from hand. The
run itself is timing and is not repeated here (``python bench/daemon.py --out ...``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench_scripts import bench_module

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results" / "daemon.json"


def bench() -> Any:
    return bench_module("daemon")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("saved", [RESULTS, RESULTS.with_name("daemon-closed-loop.json")])
def test_readme_daemon_table_is_the_saved_run(saved: Path) -> None:
    """The README quotes bench/daemon.py --markdown of each saved run it shows, verbatim."""
    table = bench().markdown(json.loads(saved.read_text(encoding="utf-8")))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert squash(table) in squash(readme), "README daemon table should read:\n" + table


@pytest.mark.parametrize(
    ("section", "figure"),
    [
        ("http", "saturation_cpu_per_event"),
        ("http", "cpu_per_event_at_rate"),
        ("http", "saturation_events_per_s"),
        ("pull", "drain_msgs_per_s"),
        ("pull", "cpu_per_msg"),
    ],
)
def test_saved_run_has_ratios_of_both_serve_modes(section: str, figure: str) -> None:
    """Every figure of the saved run is a ratio to the bare baseline for serve's defaults and --no-log."""
    per = json.loads(RESULTS.read_text(encoding="utf-8"))[section][figure]
    for name in ("serve", "serve_no_log"):
        q = per[name]["ratio_to_bare"]
        assert 0 < q["min"] <= q["median"] <= q["max"], (name, q)
    assert per["bare"]["median"] > 0


def history() -> Any:
    return bench_module("daemon_history")


def test_performance_notes_quote_the_run_history() -> None:
    """docs/performance.md's table of runs is bench/daemon_history.py's rendering of the saved runs, verbatim."""
    notes = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    table = history().table()
    assert squash(table) in squash(notes), "docs/performance.md should read:\n" + table


def test_readme_table_is_the_last_run_of_the_history() -> None:
    """The README's daemon table is the newest saved run of the history (daemon.json is its copy)."""
    h = history()
    newest = json.loads((RESULTS.parent / f"daemon-{h.RUNS[-1]}.json").read_text("utf-8"))
    assert json.loads(RESULTS.read_text(encoding="utf-8")) == newest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bare": {"http_answer": "app", "pull_scheduler": "pool"}}, "not a default run"),
        ({"load_client": "aiohttp"}, "not a default run"),
        ({"run_retries": 1}, "not a default run"),
    ],
)
def test_history_refuses_a_run_not_against_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], message: str
) -> None:
    """A saved run measured against the old baselines, another client or the closed loop is not a row."""
    h = history()
    saved = json.loads(RESULTS.read_text(encoding="utf-8")) | change
    (tmp_path / "daemon-abc1234.json").write_text(json.dumps(saved), encoding="utf-8")
    monkeypatch.setattr(h, "RESULTS", tmp_path)
    with pytest.raises(ValueError, match=message):
        h.table(("abc1234",))


def test_readme_soak_figures_are_the_saved_soak() -> None:
    """The README's acceptance-3 figures (events, log and RSS over the second half) are the saved soak run's."""
    soak = json.loads((RESULTS.parent / "daemon-soak.json").read_text(encoding="utf-8"))["soak"]
    readme = squash((REPO / "README.md").read_text(encoding="utf-8"))
    log_lo, log_hi = soak["log_mb_second_half_min_max"]
    rss_lo, rss_hi = soak["rss_mb_second_half_min_max"]
    assert f"{soak['events']:,} events at saturation" in readme
    assert f"({log_lo:g}-{log_hi:g} MB over the second half of the run)" in readme
    assert f"({rss_lo:g}-{rss_hi:g} MB over the second half)" in readme
