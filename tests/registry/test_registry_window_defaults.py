"""A processor's ``window`` replaces ``defaults.window`` whole: a key it leaves out takes the
built-in default (``quiet: 30s``, ``max_wait: 2m``), not the value under ``defaults.window``
(docs/registry.md, ``window``). Pinned here because a reader may expect a merge."""

from __future__ import annotations

import pytest

from scoperouter.errors import ConfigError
from scoperouter.processor_registry.loader import load_config_text

REGISTRY = """
version: 1
entities: {{player: {{}}}}
defaults:
  window: {{quiet: 45s, max_wait: 10m}}
processors:
  p:
    phase: 3
    granularity: player
    inputs: [{{source: raw.t}}]
{window}
"""


@pytest.mark.parametrize(
    ("window", "quiet_s", "max_wait_s"),
    [
        pytest.param("", 45.0, 600.0, id="no-window-takes-defaults-window"),
        pytest.param("    window: {quiet: 10s}", 10.0, 120.0, id="quiet-only-built-in-max_wait"),
        pytest.param("    window: {max_wait: 5m}", 30.0, 300.0, id="max_wait-only-built-in-quiet"),
        pytest.param("    window: {}", 30.0, 120.0, id="empty-window-built-ins"),
        pytest.param("    window: {quiet: 10s, max_wait: 1m}", 10.0, 60.0, id="both-written"),
    ],
)
def test_a_processor_window_replaces_the_defaults_window(
    window: str, quiet_s: float, max_wait_s: float
) -> None:
    """Keys a processor window omits take the built-in defaults, not defaults.window's values."""
    p = load_config_text(REGISTRY.format(window=window), with_relations=False).registry.processors[
        "p"
    ]
    assert (p.quiet_s, p.max_wait_s) == (quiet_s, max_wait_s)


def test_quiet_longer_than_the_built_in_max_wait_is_rejected() -> None:
    """window: {quiet: 5m} alone is rejected: the built-in max_wait (2m) would be shorter."""
    with pytest.raises(ConfigError, match=r"max_wait \(2m\) must not be shorter than quiet \(5m\)"):
        load_config_text(REGISTRY.format(window="    window: {quiet: 5m}"), with_relations=False)
