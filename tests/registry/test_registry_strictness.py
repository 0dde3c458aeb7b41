"""The registry loader is as strict as its JSON Schema: Python field names are not keys, no
value is coerced to another type, ``server:`` values are checked as ``serve`` checks them;
relation CSVs may start with a byte-order mark."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from scoperouter.processor_registry.loader import check_config_bytes

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
version: 1
entities:
  player: {}
  team: {}
relations:
  team_players: {from: team, to: player}
relation_data:
  csv: {dir: rel}
processors:
  summary:
    phase: 3
    granularity: player
    inputs:
      - source: raw.box
    publishes: analytics.summary
"""

# (what, registry text, the YAML path the error must name)
WRONG = [
    (
        "python field name 'from_' instead of the key 'from'",
        BASE.replace("{from: team, to: player}", "{from_: team, to: player}"),
        "relations.team_players.from_",
    ),
    (
        "python field name 'validate_' instead of the key 'validate'",
        BASE + "validate_: {ignore: [phase_order]}\n",
        "validate_",
    ),
    (
        "a quoted number where a number is expected",
        BASE + "report: {waste_pct: '30'}\n",
        "report.waste_pct",
    ),
    (
        "a boolean where a number is expected (true became 1.0 week)",
        BASE + "report: {payback_weeks: true}\n",
        "report.payback_weeks",
    ),
    (
        "a boolean where hours are expected",
        BASE.replace(
            "    publishes: analytics.summary\n",
            "    publishes: analytics.summary\n    engineering_hours: true\n",
        ),
        "processors.summary.engineering_hours",
    ),
    (
        "a number where a boolean is expected",
        BASE + "defaults: {target: {pubsub: {topic: t, ordering: 0}}}\n",
        "defaults.target.pubsub.ordering",
    ),
]


@pytest.mark.parametrize(("what", "text", "path"), WRONG, ids=[w[0] for w in WRONG])
def test_strict_models_reject_what_the_json_schema_rejects(what: str, text: str, path: str) -> None:
    """What the generated JSON Schema rejects, validate rejects, at the key's YAML path."""
    schema = json.loads((ROOT / "schemas" / "routes.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(text)))
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    assert not r.valid, f"{what}: accepted"
    assert any(i.to_json()["path"] == path for i in r.errors), [i.format() for i in r.errors]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (BASE + "report: {payback_weeks: .inf}\n", "report.payback_weeks"),
        (BASE + "report: {engineering_hours: .inf}\n", "report.engineering_hours"),
        (BASE + "report: {wasted_hours_per_week: .nan}\n", "report.wasted_hours_per_week"),
        (BASE + "report: {seconds_per_entity: .Inf}\n", "report.seconds_per_entity"),
        (
            BASE + "    engineering_hours: .inf\n",
            "processors.summary.engineering_hours",
        ),
    ],
)
def test_validate_rejects_infinite_and_nan_numbers(text: str, path: str) -> None:
    """YAML's .inf and .nan are floats, but no threshold: refused at the key (accepted, .inf
    reached `report --json` as the bare token Infinity, which is not JSON)."""
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    assert not r.valid, "accepted"
    (issue,) = r.errors
    assert issue.to_json()["path"] == path and "finite number" in issue.message, issue.format()


@pytest.mark.parametrize(
    ("window", "ok"),
    [
        ("{quiet: 36500d, max_wait: 36500d}", True),  # 100 years: the longest
        ("{quiet: 30s, max_wait: 36500.5d}", False),
        ("{quiet: 30s, max_wait: 876001h}", False),
        ("{quiet: 99999999999999999999d, max_wait: 99999999999999999999d}", False),
    ],
)
def test_durations_are_at_most_a_hundred_years(window: str, ok: bool) -> None:
    """A duration over 36500d is refused at its key (10^20 days validated, then replay
    failed with an OverflowError when the window fired)."""
    text = BASE + f"    window: {window}\n"
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    assert r.valid == ok, [i.format() for i in r.errors]
    if not ok:
        assert all("is over 36500d (100 years)" in i.message for i in r.errors)
        assert {i.to_json()["path"].rsplit(".", 1)[0] for i in r.errors} == {
            "processors.summary.window"
        }


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("as_of: tomorrow", "server.as_of"),
        ("as_of: 2025-02-30", "server.as_of"),
        ('cpus: "3-1"', "server.cpus"),
        ("log_level: LOUD", "server.log_level"),
    ],
)
def test_validate_rejects_server_values_that_serve_rejects(line: str, path: str) -> None:
    """A server: value serve would refuse is a validate error at the key's line and column."""
    text = BASE + f"server:\n  {line}\n"
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    assert not r.valid, "accepted"
    (issue,) = r.errors
    assert issue.to_json()["path"] == path
    assert (issue.line, issue.column) == (
        text.splitlines().index(f"  {line}") + 1,
        3 + len(line.split(":")[0]) + 2,
    )


def test_relation_csv_with_a_utf8_bom_loads(tmp_path: Path) -> None:
    """A relation CSV saved with a UTF-8 byte-order mark loads."""
    from scoperouter.processor_registry.loader import check_config

    cfg = tmp_path / "routes.yaml"
    cfg.write_text(BASE, encoding="utf-8")
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "team_players.csv").write_bytes(
        b"\xef\xbb\xbfdate,from,to\n,LAL,lebronjames\n"
    )
    r = check_config(cfg)
    assert r.valid, [i.format() for i in r.issues]
    assert r.config is not None
    from datetime import date

    assert r.config.relations.targets("team_players", date(2025, 1, 1), "LAL") == {"lebronjames"}
