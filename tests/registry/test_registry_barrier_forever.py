"""``validate`` warns (``barrier_may_wait_forever``) when a fan-in barrier can wait for an
upstream that nothing bounds: the barrier has no timeout of its own (or holds at it:
``on_timeout: hold``, or ``min_complete`` still needs that upstream) and the upstream has
no ``completion_timeout`` (its own or ``defaults.completion_timeout``). One lost completion
would then hold the processor's triggers for that date forever (docs/ledger.md, "The
barrier")."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from scoperouter.cli import main
from scoperouter.processor_registry.loader import check_config_bytes

CODE = "barrier_may_wait_forever"


def _doc(
    *,
    defaults: dict[str, Any] | None = None,
    p: dict[str, Any] | None = None,
    q: dict[str, Any] | None = None,
    u1: dict[str, Any] | None = None,
    solo: dict[str, Any] | None = None,
    u3: bool = False,
) -> str:
    """raw.a -> u1, u2 -> p -> q; solo reads only raw.a (no upstream publisher). Keyword
    dicts are merged into that processor (or into ``defaults``); ``u3`` adds a second
    publisher of ``an.u2`` (a ``duplicate_publishes`` warning of its own)."""
    procs: dict[str, Any] = {
        "u1": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
        "u2": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
        "p": {
            "phase": 4,
            "granularity": "player",
            "inputs": [{"source": "an.u1"}, {"source": "an.u2"}],
            "publishes": "pre.p",
        },
        "q": {"phase": 5, "granularity": "player", "inputs": [{"source": "pre.p"}]},
        "solo": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
    }
    procs["u1"]["publishes"] = "an.u1"
    procs["u2"]["publishes"] = "an.u2"
    if u3:
        procs["u3"] = {
            "phase": 3,
            "granularity": "player",
            "inputs": [{"source": "raw.a"}],
            "publishes": "an.u2",
        }
    for name, extra in (("p", p), ("q", q), ("u1", u1), ("solo", solo)):
        procs[name].update(extra or {})
    doc: dict[str, Any] = {"version": 1, "entities": {"player": {}}, "processors": procs}
    if defaults:
        doc["defaults"] = defaults
    return yaml.safe_dump(doc, sort_keys=False)


def _found(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(path, severity, upstreams named as having no completion_timeout) of every
    barrier_may_wait_forever finding."""
    res = check_config_bytes(text, with_relations=False)
    assert res.errors == (), res.errors
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for i in res.issues:
        if i.code != CODE:
            continue
        m = re.search(r"no completion_timeout \(([^)]*)\)", i.message)
        named = tuple(re.findall(r"'(\w+)'", m.group(1))) if m else ()
        out.append((".".join(str(s) for s in i.path), i.severity, named))
    return out


NO_TIMEOUT: dict[str, Any] = {"barrier": {}}
RUN_AT_1H: dict[str, Any] = {"barrier": {"timeout": "1h"}}
HOLD_AT_1H: dict[str, Any] = {"barrier": {"timeout": "1h", "on_timeout": "hold"}}
CT = {"completion_timeout": "10m"}


@pytest.mark.parametrize(
    ("case", "kwargs", "expected"),
    [
        ("no barrier at all", {}, []),
        (
            "barrier without timeout, upstreams without completion_timeout",
            {"p": NO_TIMEOUT},
            [("processors.p.barrier", "warning", ("u1", "u2"))],
        ),
        ("barrier with a timeout (on_timeout: run)", {"p": RUN_AT_1H}, []),
        (
            "barrier holding at its timeout (on_timeout: hold)",
            {"p": HOLD_AT_1H},
            [("processors.p.barrier", "warning", ("u1", "u2"))],
        ),
        (
            "one upstream with its own completion_timeout: only the other is named",
            {"p": NO_TIMEOUT, "u1": CT},
            [("processors.p.barrier", "warning", ("u2",))],
        ),
        (
            "defaults.completion_timeout covers every upstream",
            {"p": NO_TIMEOUT, "defaults": CT},
            [],
        ),
        (
            "on_timeout: hold is covered by defaults.completion_timeout too",
            {"p": HOLD_AT_1H, "defaults": CT},
            [],
        ),
        (
            "transitive upstreams count (q waits for p, and p for u1 and u2)",
            {"q": NO_TIMEOUT},
            [("processors.q.barrier", "warning", ("p", "u1", "u2"))],
        ),
        (
            "a barrier on a processor with no upstream publisher holds nothing",
            {"solo": NO_TIMEOUT},
            [],
        ),
        (
            "defaults.barrier without timeout: one finding at defaults.barrier",
            {"defaults": NO_TIMEOUT},
            [("defaults.barrier", "warning", ("p", "u1", "u2"))],
        ),
        ("defaults.barrier with a timeout", {"defaults": RUN_AT_1H}, []),
        (
            "defaults.barrier overridden by a processor barrier with a timeout",
            {"defaults": NO_TIMEOUT, "p": RUN_AT_1H, "q": RUN_AT_1H},
            [],
        ),
        (
            "defaults.barrier with a timeout, a processor barrier without",
            {"defaults": RUN_AT_1H, "p": NO_TIMEOUT},
            [("processors.p.barrier", "warning", ("u1", "u2"))],
        ),
        (
            "min_complete with the default share 1.0 waits for every upstream at the timeout",
            {"p": {"barrier": {"timeout": "1h", "min_complete": {"critical": ["u1"]}}}},
            [("processors.p.barrier", "warning", ("u1", "u2"))],
        ),
        (
            "min_complete with share 0 waits only for its critical upstreams",
            {
                "p": {
                    "barrier": {"timeout": "1h", "min_complete": {"critical": ["u1"], "share": 0.0}}
                }
            },
            [("processors.p.barrier", "warning", ("u1",))],
        ),
        (
            "min_complete with share 0 and no critical upstream runs at the timeout",
            {"p": {"barrier": {"timeout": "1h", "min_complete": {"share": 0.0}}}},
            [],
        ),
        (
            "every publisher of an input is an upstream (two publish an.u2)",
            {"p": NO_TIMEOUT, "u1": CT, "u3": True},
            [("processors.p.barrier", "warning", ("u2", "u3"))],
        ),
    ],
)
def test_barrier_may_wait_forever(case: str, kwargs: dict[str, Any], expected: list[Any]) -> None:
    """A barrier that can wait on an upstream with no completion_timeout is a warning."""
    assert _found(_doc(**kwargs)) == expected, case


def test_message_says_what_to_set() -> None:
    """The message names the upstreams and the keys that bound the wait."""
    res = check_config_bytes(_doc(p=NO_TIMEOUT, u1=CT), with_relations=False)
    (w,) = [i for i in res.issues if i.code == CODE]
    assert "'u2'" in w.message and "'u1'" not in w.message
    assert "completion_timeout" in w.message and "defaults.completion_timeout" in w.message
    assert "on_timeout: run" in w.message


def test_positioned_at_the_barrier_key() -> None:
    """The finding points at the line of the processor's barrier key."""
    text = _doc(p=NO_TIMEOUT)
    res = check_config_bytes(text, file="routes.yaml", with_relations=False)
    (w,) = [i for i in res.issues if i.code == CODE]
    assert text.splitlines()[(w.line or 0) - 1].strip().startswith("barrier:")


def test_silenced_like_any_warning() -> None:
    """It is a warning code: validate.ignore silences it, and the registry stays valid."""
    text = _doc(p=NO_TIMEOUT) + f"validate: {{ignore: [{CODE}]}}\n"
    res = check_config_bytes(text, with_relations=False)
    assert res.valid and [i.code for i in res.silenced] == [CODE]
    assert not [i for i in res.issues if i.code == CODE]


def test_strict_fails_on_it(tmp_path: Any) -> None:
    """validate passes (a warning), validate --strict does not."""
    f = tmp_path / "routes.yaml"
    f.write_text(_doc(p=NO_TIMEOUT), encoding="utf-8")
    assert main(["validate", str(f)]) == 0
    assert main(["validate", "--strict", str(f)]) != 0
