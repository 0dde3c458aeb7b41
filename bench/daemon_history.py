"""Issue 16's figures run by run: one row per saved ``bench/daemon.py`` run against the
floor of ``serve``'s own stack (the lean bare HTTP answer, the inline Pub/Sub scheduler,
the raw load client), oldest first -- the table ``docs/performance.md`` quotes.

Invariant: every cell is read from a saved report in ``bench/results/`` (a test keeps the
doc equal to this script's output); nothing here measures. A new run is saved as
``bench/results/daemon-<commit>.json`` and its commit appended to :data:`RUNS`.

    python bench/daemon_history.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# (commit of the measured src/, its saved report), oldest first; daemon-d501a8c.json was
# the README table's run from 2026-12-04 until stop 45
RUNS = (
    "60bb5d8",
    "d501a8c",
    "33827aa",
    "ff96396",
    "95bf3f5",
    "f91a16c",
    "7bfb941",
    "b0de190",
    "60857cc",
    "cf3c30e",
    "69373de",
    "9e540e4",
)

TARGETS = {  # issue 16's acceptance, per column (None: no target)
    "sat_cpu_serve": "<= 2.5x",
    "sat_cpu_no_log": "<= 2x",
    "sat_rate_serve": ">= 0.5x",
    "sat_rate_no_log": ">= 0.5x",
    "pull_cpu_serve": "<= 1.5x",
    "pull_cpu_no_log": "<= 1.5x",
    "log_bytes": "<= 1 KB",
}


def load(commit: str) -> dict[str, Any]:
    """The saved report of ``commit``'s run; refuses one not measured against the floor."""
    r: dict[str, Any] = json.loads((RESULTS / f"daemon-{commit}.json").read_text("utf-8"))
    floor = r.get("bare") == {"http_answer": "lean", "pull_scheduler": "inline"}
    if not floor or r.get("load_client") != "raw" or "run_retries" in r:
        raise ValueError(f"daemon-{commit}.json is not a default run against the floor")
    return r


def _ratio(r: dict[str, Any], sect: str, key: str, name: str) -> str:
    q = r[sect][key][name]["ratio_to_bare"]
    return f"{q['median']}x ({q['min']}-{q['max']})"


def row(commit: str, r: dict[str, Any]) -> str:
    """One run's cells: median ratio (min-max over its rounds) for each figure."""
    sat_bare = r["http"]["saturation_cpu_per_event"]["bare"]["median"]
    rate_bare = r["http"]["saturation_events_per_s"]["bare"]["median"]
    load_avg = r["loadavg_1min"]
    cells = [
        f"{commit} ({r['date']}, {r['rounds']} rounds, load {load_avg['min']}-{load_avg['max']})",
        f"{sat_bare:.3g} ms, {rate_bare:,.0f}/s",
        _ratio(r, "http", "saturation_cpu_per_event", "serve"),
        _ratio(r, "http", "saturation_cpu_per_event", "serve_no_log"),
        _ratio(r, "http", "saturation_events_per_s", "serve"),
        _ratio(r, "http", "saturation_events_per_s", "serve_no_log"),
        _ratio(r, "pull", "drain_msgs_per_s", "serve"),
        _ratio(r, "pull", "cpu_per_msg", "serve"),
        _ratio(r, "pull", "cpu_per_msg", "serve_no_log"),
        f"{r['http']['log_bytes_per_event']['median']:g} B",
    ]
    return "| " + " | ".join(cells) + " |"


def table(commits: tuple[str, ...] = RUNS) -> str:
    """The history table, one row per run of ``commits``."""
    head = (
        "| run of `src/` | bare server at saturation | CPU per event at saturation, `serve` "
        "| the same, `--no-log` | saturation throughput, `serve` | the same, `--no-log` "
        "| Pub/Sub drain, `serve` | Pub/Sub CPU per message, `serve` | the same, `--no-log` "
        "| log per event |"
    )
    target = (
        "| issue 16's target | - | "
        + " | ".join(
            TARGETS[k]
            for k in ("sat_cpu_serve", "sat_cpu_no_log", "sat_rate_serve", "sat_rate_no_log")
        )
        + " | >= 0.8x | "
        + " | ".join(TARGETS[k] for k in ("pull_cpu_serve", "pull_cpu_no_log", "log_bytes"))
        + " |"
    )
    lines = [head, "|" + "---|" * 10]
    lines += [row(c, load(c)) for c in commits]
    lines.append(target)
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
    sys.exit(0)
