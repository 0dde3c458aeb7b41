"""A mapped body never narrows the router's scope (docs/targets.md): parsed back as the
service reads it, it covers the trigger's date and, at entity scope, every id -- or the
trigger is refused (a dead letter an operator sees), never sent narrower."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.models import TargetSpec
from scoperouter.processor_registry.target_format import build_shaper, trigger_fields
from scoperouter.processor_registry.template import (
    RenderError,
    TemplateError,
    compile_template,
    render,
)

FIELDS = trigger_fields(["pgs"], ["player"])
REPO = Path(__file__).resolve().parents[2]

# ids as they reach a trigger: any printable text (commas, quotes, spaces included)
_ids = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=6),
    min_size=1,
    max_size=5,
    unique=True,
)


def _trigger(ids: list[str] | None, day: date = date(2025, 11, 19)) -> dict[str, Any]:
    return Trigger(
        trigger_id="t-1", processor="pgs", game_date=day, start_date=day, end_date=day,
        scope="entities" if ids else "date", entity_type="player" if ids else None,
        entity_ids=tuple(sorted(ids)) if ids else None,
        reason="entity_scope" if ids else "fallback_threshold",
    ).wire()  # fmt: skip


@given(_ids, st.sampled_from([",", ";", " ", "|", ", ", "','"]))
def test_a_joined_id_list_splits_back_to_the_ids_or_is_refused(ids: list[str], sep: str) -> None:
    """$join renders ids a service splits back to exactly the trigger's ids; an id holding the separator is a RenderError, not a narrower list."""
    node = compile_template({"ids": {"$join": ["$.entity_ids", sep]}}, FIELDS)
    trig = _trigger(ids)
    try:
        body = render(node, trig)
    except RenderError as exc:
        assert sep.join(trig["entity_ids"]).split(sep) != list(trig["entity_ids"])
        assert "separator" in str(exc)
        return
    assert body["ids"].split(sep) == list(trig["entity_ids"])


@pytest.mark.parametrize(
    ("ids", "sep"),
    [(["a,b", "c"], ","), (["lebron james"], " "), (["x;y"], ";"), (["',", "x"], "','")],
)
def test_an_id_holding_the_separator_is_a_render_error(ids: list[str], sep: str) -> None:
    """The joined text would split into other ids (a narrower scope): refused at render."""
    node = compile_template({"$join": ["$.entity_ids", sep]}, FIELDS)
    with pytest.raises(RenderError, match="separator"):
        render(node, _trigger(ids))


def test_an_empty_separator_is_a_validate_error() -> None:
    """$join with '' cannot be split back: validate rejects it."""
    with pytest.raises(TemplateError, match="separator is a non-empty"):
        compile_template({"$join": ["$.entity_ids", ""]}, FIELDS)


def _docs_mappings() -> dict[str, dict[str, Any]]:
    doc = (REPO / "docs" / "targets.md").read_text()
    blocks = re.findall(r"<!-- target-mapping: (\w+) -->\s*```yaml\n(.*?)```", doc, re.S)
    return {name: yaml.safe_load(text)["target"] for name, text in blocks}


DOCS = _docs_mappings()
PROCESSOR_OF = {
    "analytics_process_date_range": "player_game_summary",
    "precompute_process_date": "player_daily_cache",
    "coordinator_start": "prediction_coordinator",
}
ENV = {"ANALYTICS_URL": "http://a", "ANALYTICS_API_KEY": "k", "PRECOMPUTE_URL": "http://p",
       "COORDINATOR_URL": "http://c", "COORDINATOR_API_KEY": "k"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DOCS))
@given(
    ids=st.none() | _ids,
    day=st.dates(date(2000, 1, 1), date(2100, 12, 31)),
    reason=st.sampled_from(["backfill", "entity_scope", "fallback_threshold", "empty_mapping"]),
)
def test_docs_mappings_cover_the_triggers_scope(
    name: str, ids: list[str] | None, day: date, reason: str
) -> None:
    """Each production mapping of docs/targets.md, read as its service reads it, covers the trigger's date and every id (a missing or empty entities_changed runs the whole date)."""
    proc = PROCESSOR_OF[name]
    shaper = build_shaper(
        TargetSpec.model_validate(DOCS[name]),
        trigger_fields([proc], ["player"]),
        literal_hook=lambda text, _p: re.sub(r"\$\{(\w+)\}", lambda m: ENV[m.group(1)], text),
    )
    trig = {**_trigger(ids, day), "processor": proc}
    if not ids:
        trig["reason"] = reason if reason != "entity_scope" else "no_entities_in_event"
    body = json.loads(shaper.data(trig))
    days = (
        {body["start_date"], body["end_date"]}
        if "start_date" in body
        else {body.get("analysis_date", body.get("game_date"))}
    )
    assert days == {day.isoformat()}  # one date a trigger: the service runs exactly it
    # analytics_base.py:841 / precompute_base.py:242-243: a falsy entities_changed is a full run
    scoped = body.get("entities_changed")
    if scoped:
        assert ids is not None and set(scoped) >= set(ids)


@pytest.mark.parametrize(
    "key",
    [
        {"$coalesce": ["$.entity_type", "none"]},
        {
            "$coalesce": [
                "$.entity_type",
                {"$lookup": ["$.scope", {"entities": "x", "date": "none"}]},
            ]
        },
        {"$lookup": ["$.scope", {"entities": "player", "date": "none"}]},
    ],
)
def test_a_lookup_key_built_from_known_values_is_checked_for_coverage(key: Any) -> None:
    """A $lookup without a default whose key derives from fields with known values ($coalesce, a nested $lookup) must cover them at validate, not miss at dispatch for some triggers only."""
    table = {"$lookup": [key, {"player": 1}]}
    fields = trigger_fields(["pgs", "tds"], ["player", "team"])
    with pytest.raises(TemplateError, match="no entry for"):
        compile_template(table, fields)
    # and with every value covered it validates and renders for each trigger
    full = {"$lookup": [key, {"player": 1, "team": 2, "none": 0, "x": 3}]}
    node = compile_template(full, fields)
    for etype, ids in (("player", ["a"]), ("team", ["LAL"]), (None, None)):
        render(node, {**_trigger(ids), "entity_type": etype})


@pytest.mark.parametrize(
    ("template", "ids", "expected"),
    [
        ({"$eq": ["$.entity_type", None]}, None, True),
        ({"$eq": ["$.entity_type", None]}, ["a"], False),
        ({"$ne": [None, "$.entity_type"]}, ["a"], True),
        ({"$in": ["$.entity_type", [None, "team"]]}, None, True),
    ],
)
def test_a_nullable_field_with_known_values_compares_with_null(
    template: Any, ids: list[str] | None, expected: bool
) -> None:
    """entity_type is null on a full-date trigger: comparing it with null validates (it is not 'never None') and renders."""
    node = compile_template(template, trigger_fields(["pgs", "tds"], ["player", "team"]))
    assert render(node, _trigger(ids)) is expected


def test_a_non_nullable_field_is_never_null() -> None:
    """scope is never null: comparing it with null is still a validate error."""
    with pytest.raises(TemplateError, match="scope is never None"):
        compile_template({"$eq": ["$.scope", None]}, FIELDS)
