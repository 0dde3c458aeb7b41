"""A ``publishes`` no input reads that is one edit from a source inputs read and nothing
publishes is a ``near_miss_source`` error at the ``publishes`` (declaring the read source no longer hides
the typo that cuts the DAG); a barrier with no upstream publisher to wait for is a
``barrier_without_upstream`` warning."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from scoperouter.processor_registry.loader import check_config_bytes


def _doc(
    publishes: str,
    reads: str,
    *,
    sources: tuple[str, ...] = (),
    also_reads_publishes: bool = False,
    other_publishes: str | None = None,
    barrier: dict[str, Any] | None = None,
    default_barrier: dict[str, Any] | None = None,
) -> str:
    """up (reads raw.box) publishes ``publishes``; down reads ``reads``. ``sources`` are
    declared; ``also_reads_publishes`` makes a third processor read ``publishes``;
    ``other_publishes`` makes that third processor publish it instead; ``barrier`` goes on
    down, ``default_barrier`` into defaults (completion_timeout set: no other warning)."""
    procs: dict[str, Any] = {
        "up": {
            "phase": 3,
            "granularity": "player",
            "inputs": [{"source": "raw.box"}],
            "publishes": publishes,
        },
        "down": {"phase": 4, "granularity": "player", "inputs": [{"source": reads}]},
    }
    if also_reads_publishes:
        procs["side"] = {"phase": 5, "granularity": "player", "inputs": [{"source": publishes}]}
    if other_publishes is not None:
        procs["other"] = {
            "phase": 3,
            "granularity": "player",
            "inputs": [{"source": "raw.other"}],
            "publishes": other_publishes,
        }
    if barrier is not None:
        procs["down"]["barrier"] = barrier
    doc: dict[str, Any] = {
        "version": 1,
        "entities": {"player": {}},
        "defaults": {"completion_timeout": "30m"},
        "processors": procs,
    }
    if default_barrier is not None:
        doc["defaults"]["barrier"] = default_barrier
    if sources:
        doc["sources"] = {s: {} for s in sources}
    return yaml.safe_dump(doc, sort_keys=False)


def _found(text: str, code: str) -> list[tuple[str, str]]:
    """(severity, dotted path) of every finding with ``code``."""
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    return [(i.severity, ".".join(map(str, i.path))) for i in r.issues if i.code == code]


AT_PUBLISHES = [("error", "processors.up.publishes")]
AT_INPUT = [("error", "processors.down.inputs.0.source")]

NEAR = [
    # the d5 case: the read source is declared, so only the publishes side can see the typo
    ("an.summarx", "an.summary", {"sources": ("an.summary",)}, AT_PUBLISHES),
    ("an.player_game_sumary", "an.player_game_summary", {"sources": ("an.player_game_summary",)}, AT_PUBLISHES),
    ("an.sumary", "an.summary", {"sources": ("an.summary",)}, AT_PUBLISHES),  # a deletion
    ("an.summray", "an.summary", {"sources": ("an.summary",)}, AT_PUBLISHES),  # a swap
    # the read source has its publisher already: meaning it would make two publishers
    ("an.summry", "an.summary", {"other_publishes": "an.summary"}, []),
    # undeclared read source: reported once, at the input, as before
    ("an.summary", "an.sumary", {}, AT_INPUT),
    # something reads the published name: it is not dangling
    ("an.sumary", "an.summary", {"sources": ("an.summary",), "also_reads_publishes": True}, []),
    # the published name is declared too: both names are vouched for
    ("an.sumary", "an.summary", {"sources": ("an.summary", "an.sumary")}, []),
    # a version is not a typo; names far apart are not near misses
    ("an.sales_v2", "an.sales_v1", {"sources": ("an.sales_v1",)}, []),
    ("an.summary", "an.totals", {"sources": ("an.totals",)}, []),
    # read exactly as published: nothing to report
    ("an.summary", "an.summary", {}, []),
]  # fmt: skip


@pytest.mark.parametrize(("publishes", "reads", "kw", "expected"), NEAR)
def test_a_publishes_one_edit_from_a_read_source_is_a_near_miss(
    publishes: str, reads: str, kw: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    """An unread publishes one edit from an unpublished input source is one near_miss_source error."""
    assert _found(_doc(publishes, reads, **kw), "near_miss_source") == expected


def test_the_publishes_near_miss_names_both_sources_and_the_cut_edge() -> None:
    """The message names the published and the read source, its readers, and the fix."""
    r = check_config_bytes(_doc("an.sumary", "an.summary", sources=("an.summary",)))
    (err,) = r.errors
    assert "'an.sumary'" in err.message and "'an.summary'" in err.message
    assert "down" in err.message and "sources:" in err.message


BARRIER = [
    # down's own barrier, but its input is published by nobody (the typo cut the edge)
    (
        {"publishes": "an.sumary", "reads": "an.summary", "sources": ("an.summary",)},
        {"barrier": {}},
        [("warning", "processors.down.barrier")],
    ),
    # down's own barrier with an upstream: nothing to say
    ({"publishes": "an.summary", "reads": "an.summary"}, {"barrier": {}}, []),
    # defaults.barrier that no processor can use (nobody has an upstream)
    (
        {"publishes": "an.summary", "reads": "raw.other"},
        {"default_barrier": {"timeout": "1h"}},
        [("warning", "defaults.barrier")],
    ),
    # defaults.barrier with one processor that has an upstream: raw readers are normal
    ({"publishes": "an.summary", "reads": "an.summary"}, {"default_barrier": {}}, []),
    # no barrier at all
    ({"publishes": "an.summary", "reads": "raw.other"}, {}, []),
]


@pytest.mark.parametrize(("names", "kw", "expected"), BARRIER)
def test_a_barrier_with_no_upstream_publisher_is_a_warning(
    names: dict[str, Any], kw: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    """A barrier nothing upstream can hold warns (barrier_without_upstream) at its key."""
    text = _doc(names["publishes"], names["reads"], sources=names.get("sources", ()), **kw)
    assert _found(text, "barrier_without_upstream") == expected
