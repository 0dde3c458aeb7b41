"""A Pub/Sub target passes a trigger's attributes to the client's ``publish()`` as keyword
arguments, the date under the registry's ``date_field``: a date_field named like one of
publish()'s own parameters (``data``: every publish raised TypeError, retried to the
horizon; ``timeout``, ``retry``, ``ordering_key``: the date attribute silently missing) is
refused by ``validate``, at its line. date_field is registry-wide (any processor's target
may be Pub/Sub), so the rule is too."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from scoperouter.processor_registry.loader import check_config_bytes

ROUTES = (Path(__file__).resolve().parents[2] / "routes.yaml").read_text()


def _publish_parameters() -> list[str]:
    """The named parameters of the installed client's publish() (not its **attrs)."""
    from google.cloud.pubsub_v1 import PublisherClient

    params = inspect.signature(PublisherClient.publish).parameters.values()
    return sorted(p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD)


@pytest.mark.parametrize("field", ["data", "timeout", "retry", "ordering_key", "topic", "self"])
def test_a_date_field_named_like_a_publish_parameter_is_refused_at_its_line(field: str) -> None:
    """validate refuses it with one FILE:LINE error naming date_field and publish()."""
    text = ROUTES + f"\ndate_field: {field}\n"
    line = text.count("\n")  # the last line
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    [issue] = [i for i in r.errors if i.path == ("date_field",)]
    assert issue.code == "reserved_name" and issue.line == line
    said = issue.format()
    assert said.startswith(f"routes.yaml:{line}:") and "publish()" in said and field in said


def test_every_named_parameter_of_the_installed_publish_is_refused() -> None:
    """The list follows the client library: each parameter it names is refused."""
    for field in _publish_parameters():
        r = check_config_bytes(ROUTES + f"\ndate_field: {field}\n", with_relations=False)
        assert any(i.path == ("date_field",) for i in r.errors), field


def test_an_ordinary_date_field_still_validates() -> None:
    """business_date is not refused."""
    r = check_config_bytes(ROUTES + "\ndate_field: business_date\n", with_relations=False)
    assert not [i for i in r.errors if i.path == ("date_field",)]
