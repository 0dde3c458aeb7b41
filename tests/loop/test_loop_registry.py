"""The closed-loop registry keys: defaults and overrides resolve, and validate catches a
barrier that waits for a processor that is not upstream of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from closed_loop_support import registry

from scoperouter.errors import ConfigError
from scoperouter.processor_registry.loader import load_config_text
from scoperouter.router.loop_params import LoopOverrides, loop_params


@pytest.mark.parametrize(
    ("defaults", "proc", "expected"),
    [
        ({}, "p", (0, None, None, 30.0)),  # today's behaviour
        (
            {"run_retries": 3, "completion_timeout": "10m", "retry_backoff": "5s"},
            "p",
            (3, 600.0, None, 5.0),
        ),
        ({"barrier": {"timeout": "1h"}}, "p", (0, None, "1h", 30.0)),  # the processor's own
    ],
)
def test_params_resolve(defaults: dict[str, Any], proc: str, expected: tuple[Any, ...]) -> None:
    """Processor value, else defaults, else today's behaviour."""
    p = loop_params(registry(**defaults), proc)
    assert (
        p.run_retries,
        p.completion_timeout_s,
        p.barrier.timeout if p.barrier else None,
        p.backoff_base_s,
    ) == expected


def test_overrides_win() -> None:
    """LoopOverrides (the demo) force settings; no_barrier drops a registry barrier."""
    reg = registry({"timeout": "1m"})
    assert loop_params(reg, "p").barrier is not None
    p = loop_params(reg, "p", LoopOverrides(run_retries=5, no_barrier=True))
    assert (p.run_retries, p.barrier) == (5, None)


def _doc(critical: list[str]) -> str:
    doc = {
        "version": 1,
        "entities": {"player": {}},
        "processors": {
            "u": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.alpha"}],
                "publishes": "an.u",
            },
            "v": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.bravo"}],
                "publishes": "an.v",
            },
            "p": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "an.u"}],
                "barrier": {"timeout": "1h", "min_complete": {"critical": critical}},
            },
        },
    }
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    ("critical", "error"),
    [(["u"], None), (["v"], "'v' is not upstream of it"), (["zz"], "'zz' is not a processor")],
)
def test_min_complete_names_upstreams(
    tmp_path: Path, critical: list[str], error: str | None
) -> None:
    """min_complete.critical must name upstream processors (error bad_barrier)."""
    if error is None:
        load_config_text(_doc(critical), base_dir=tmp_path, with_relations=False)
        return
    with pytest.raises(ConfigError) as exc:
        load_config_text(_doc(critical), base_dir=tmp_path, with_relations=False)
    assert any(error in i.message and i.code == "bad_barrier" for i in exc.value.issues)
