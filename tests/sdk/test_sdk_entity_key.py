"""The affected_entities key the SDK sends: the plural the caller names (the registry's
``entities.<type>.plural``), else the singular type, which every registry accepts -- never a
guessed name+"s", which a registry with an irregular plural (``person: {plural: people}``)
does not know (its readers then ran the full date: ``unmapped_entity_type``)."""

from __future__ import annotations

from datetime import date

import pytest

from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.router.planner import plan
from scoperouter.sdk.change_detection import ChangeDetector, entity_key
from scoperouter.sdk.events import encode_event

DAY = date(2026, 3, 4)
REGISTRY = compile_registry(
    RoutesSpec.model_validate(
        {
            "version": 1,
            "entities": {"person": {"plural": "people"}, "store": {}, "bus": {}},
            "processors": {
                f"read_{t}": {
                    "phase": 2,
                    "granularity": t,
                    "inputs": [{"source": f"raw.{t}"}],
                    "publishes": f"mart.{t}",
                }
                for t in ("person", "store", "bus")
            },
        }
    )
)


@pytest.mark.parametrize(
    ("entity_type", "plural", "key"),
    [
        ("person", None, "person"),
        ("person", "people", "people"),
        ("store", None, "store"),
        ("store", "stores", "stores"),
        ("bus", None, "bus"),
    ],
)
def test_the_key_sent_is_one_the_registry_accepts(
    entity_type: str, plural: str | None, key: str
) -> None:
    """Without a plural the singular is sent, and the reader of that type keeps entity scope."""
    assert entity_key(entity_type, plural) == key
    det = ChangeDetector(f"raw.{entity_type}", entity_type, entity_plural=plural)
    det.observe(DAY, before={"x1": {"a": 1}}, after={"x1": {"a": 2}})
    [event] = det.events(run_id="r")
    assert event["affected_entities"] == {key: ["x1"]}
    decisions = plan(REGISTRY, {}, parse_event_bytes(encode_event(event), REGISTRY), DAY)
    assert [(d.processor, d.scope, d.entity_ids) for d in decisions if d.action == "run"] == [
        (f"read_{entity_type}", "entities", ("x1",))
    ]
