"""Generated JSON Schemas: checked in, current, accepted by check-jsonschema, consistent
with the models and the event normaliser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import Field

from scoperouter import schemas
from scoperouter.cli import main
from scoperouter.messages.models import Trigger
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.models import RoutesSpec

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
BROKEN = Path(__file__).resolve().parent / "broken"


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return loaded


def test_checked_in_schemas_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    """schemas/*.schema.json equal what the models generate now (schema --check exits 0)."""
    assert schemas.stale(SCHEMAS) == []
    assert main(["schema", "--check", "--dir", str(SCHEMAS)]) == 0


def test_check_fails_on_an_edited_file_until_regenerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Editing a generated file makes --check exit 1 naming it; regenerating fixes it."""
    assert main(["schema", "--dir", str(tmp_path)]) == 0
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 0
    target = tmp_path / "trigger.schema.json"
    data = json.loads(target.read_text(encoding="utf-8"))
    data["properties"].pop("reason")
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "trigger.schema.json" in err and "routes.schema.json" not in err
    assert main(["schema", "--dir", str(tmp_path)]) == 0
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 0


def test_check_fails_after_a_model_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model gaining a field makes the checked-in routes schema stale until rewritten."""
    assert main(["schema", "--dir", str(tmp_path)]) == 0

    class ChangedSpec(RoutesSpec):
        owner_team: str | None = Field(default=None, description="Who owns the pipeline.")

    monkeypatch.setattr(schemas, "RoutesSpec", ChangedSpec)
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 1
    assert "routes.schema.json" in capsys.readouterr().err
    assert main(["schema", "--dir", str(tmp_path)]) == 0
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 0
    assert "owner_team" in (tmp_path / "routes.schema.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["top level", "nested model"], ids=["top-level", "nested"])
def test_check_fails_on_a_property_without_description(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model field without Field(description=...) makes schema --check (and schema) exit 1
    naming the property's JSON pointer, even when the files are current."""
    from scoperouter.processor_registry.models import InputSpec, ProcessorSpec

    if where == "top level":

        class ChangedSpec(RoutesSpec):
            owner_team: str | None = None

        pointer = "/properties/owner_team"
    else:

        class ChangedInput(InputSpec):
            weight: int = 1

        class ChangedProcessor(ProcessorSpec):
            inputs: tuple[ChangedInput, ...] = Field(min_length=1, description="Inputs.")

        class ChangedSpec(RoutesSpec):  # type: ignore[no-redef]
            processors: dict[str, ChangedProcessor] = Field(min_length=1, description="P.")

        pointer = "/$defs/ChangedInput/properties/weight"

    monkeypatch.setattr(schemas, "RoutesSpec", ChangedSpec)
    assert ("routes.schema.json", pointer) in schemas.missing_descriptions()
    assert main(["schema", "--dir", str(tmp_path)]) == 1
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"routes.schema.json: {pointer}: property has no description" in err
    assert main(["schema", "--check", "--json", "--dir", str(tmp_path)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["stale"] == []
    assert {"file": "routes.schema.json", "pointer": pointer} in out["undescribed"]


def test_every_shipped_schema_property_is_described() -> None:
    """Every property of the checked-in routes, event and trigger schemas has a description."""
    assert schemas.missing_descriptions() == []
    for name in schemas.GENERATORS:
        assert schemas.undescribed(_schema(name)) == [], name


def test_missing_schema_dir_is_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--check against an empty directory lists every schema as missing."""
    assert main(["schema", "--check", "--dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert all(name in err for name in schemas.GENERATORS)


def test_check_jsonschema_accepts_routes_yaml(routes_path: Path) -> None:
    """The real check-jsonschema CLI accepts routes.yaml against the generated schema."""
    exe = shutil.which("check-jsonschema")
    assert exe is not None, "check-jsonschema is a dev dependency"
    proc = subprocess.run(
        [exe, "--schemafile", str(SCHEMAS / "routes.schema.json"), str(routes_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_routes_yaml_carries_the_schema_modeline(routes_path: Path) -> None:
    """routes.yaml points editors at the generated schema."""
    first = routes_path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=schemas/routes.schema.json"


@pytest.mark.parametrize(
    "name",
    [
        "misspelled_top_key",
        "zero_max_entities",
        "non_numeric_threshold",
        "float_threshold",
        "bad_duration",
        "bad_duration_unit",
        "unsupported_version",
        "bad_source_name",
        "negative_lookback",
        "missing_inputs",
        # a map key's pattern held only in patternProperties let any other key (and
        # everything under it) through
        "bad_processor_name",
        "bad_entity_name",
    ],
)
def test_schema_rejects_what_the_models_reject(name: str) -> None:
    """Faults the pydantic models catch are caught by the JSON Schema too."""
    data = yaml.safe_load((BROKEN / f"{name}.yaml").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(_schema("routes.schema.json"))
    assert list(validator.iter_errors(data)), f"{name} passed the JSON Schema"


def test_routes_schema_allows_extension_keys() -> None:
    """Top-level x-... keys (anchors) are allowed by the schema, as by the loader."""
    data = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))
    data["x-anchors"] = {"anything": [1, 2]}
    jsonschema.Draft202012Validator(_schema("routes.schema.json")).validate(data)


CANONICAL = {
    "event_id": "e-123",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "status": "success",
    "affected_entities": {"players": ["lebronjames"]},
    "changed_fields": ["injury_status"],
    "priority": "critical",
    "correlation_id": "c-9",
    "produced_at": "2025-11-19T18:05:00Z",
}


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ({}, True),
        ({"game_date": None, "start_date": "2025-11-01", "end_date": "2025-11-03"}, True),
        ({"source": None}, False),
        ({"game_date": None}, False),
        ({"game_date": None, "start_date": "2025-11-01"}, False),
        ({"status": "done"}, False),
        ({"priority": "urgent"}, False),
        ({"affected_entities": {"players": "lebronjames"}}, False),
        ({"unexpected": 1}, False),
    ],
)
def test_event_schema(change: dict[str, object], ok: bool) -> None:
    """The event schema accepts the canonical example and rejects malformed variants."""
    event = {**CANONICAL, **change}
    event = {k: v for k, v in event.items() if v is not None}
    validator = jsonschema.Draft202012Validator(
        _schema("event.schema.json"), format_checker=jsonschema.FormatChecker()
    )
    assert (not list(validator.iter_errors(event))) is ok


@pytest.mark.parametrize(
    "event",
    [
        CANONICAL,
        {"source": "nba_raw.nbac_injury_report", "game_date": "2025-11-19"},
        {
            "source": "nba_analytics.player_game_summary",
            "start_date": "2025-11-01",
            "end_date": "2025-11-03",
            "skip_downstream": True,
        },
    ],
)
def test_schema_valid_events_are_accepted_by_the_normaliser(
    routes_path: Path, event: dict[str, object]
) -> None:
    """Every event the schema accepts, the router's normaliser accepts too."""
    jsonschema.Draft202012Validator(_schema("event.schema.json")).validate(event)
    reg = load_config(routes_path, with_relations=False).registry
    normalised = normalize_event(event, reg, message_id="m-1")
    assert normalised.source == event["source"]


def test_trigger_schema_accepts_a_trigger() -> None:
    """A serialised Trigger validates against trigger.schema.json."""
    trig = Trigger(
        trigger_id="t-77",
        processor="player_game_summary",
        game_date=date(2025, 11, 19),
        start_date=date(2025, 11, 19),
        end_date=date(2025, 11, 19),
        scope="entities",
        entity_type="player",
        entity_ids=("lebronjames",),
        reason="entity_scope",
        caused_by=("e-123",),
    )
    doc = trig.model_dump(mode="json")
    jsonschema.Draft202012Validator(_schema("trigger.schema.json")).validate(doc)
    doc["scope"] = "everything"
    assert list(jsonschema.Draft202012Validator(_schema("trigger.schema.json")).iter_errors(doc))


@pytest.mark.parametrize("name", sorted(schemas.GENERATORS))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    """Every generated schema is itself a valid 2020-12 schema."""
    jsonschema.Draft202012Validator.check_schema(_schema(name))


def test_pre_commit_hooks_run_real_commands(routes_path: Path) -> None:
    """The pre-commit hooks call existing subcommands and point at the checked-in schema."""
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    offered = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    for hook in [hooks["scoperouter-validate"], hooks["scoperouter-schema-check"], *offered]:
        prog, command, *_ = hook["entry"].split()
        assert prog == "scoperouter" and command in ("validate", "schema", "test", "lineage")
    for hook in (
        hooks["scoperouter-test"],
        next(h for h in offered if h["id"] == "scoperouter-test"),
    ):
        for changed in (
            "routes.yaml",
            "routes.tests.yaml",
            "tests/routes/x.yaml",
            "data/relations/a.csv",
        ):
            assert re.search(hook["files"], changed), (hook["id"], changed)
    for hook in (
        hooks["scoperouter-lineage"],
        next(h for h in offered if h["id"] == "scoperouter-lineage"),
    ):
        for changed in (
            "routes.yaml",
            "src/scoperouter/examples/nba/sql/player_game_summary.sql",
            "pipeline/x.py",
        ):
            assert re.search(hook["files"], changed), (hook["id"], changed)
    args = hooks["check-jsonschema"]["args"]
    assert (REPO / args[args.index("--schemafile") + 1]).is_file()
    assert re.search(hooks["check-jsonschema"]["files"], routes_path.name)
    assert re.search(hooks["scoperouter-validate"]["files"], routes_path.name)
