"""Label values taken from events are bounded in length, not only in number: an unknown
source or an undeclared table longer than ``MAX_LABEL_CHARS`` is counted and logged as its
first characters and a digest of the whole name. Before, each label (and WARNING) was the
whole name: 40 events with 200,000-character sources made ``/metrics`` 16 MB."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime import metrics
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.undeclared_reads import UndeclaredReads
from scoperouter.runtime.unknown_sources import UnknownSources

LONG = 200_000
BOUND = 128  # MAX_LABEL_CHARS, as documented


def _unknown_source(m: Metrics, cfg: LoadedConfig, name: str) -> None:
    UnknownSources(m, lambda: 0.0).observe(name, "e-1")


def _undeclared_table(m: Metrics, cfg: LoadedConfig, name: str) -> None:
    ev = normalize_event(
        {
            "event_id": "pgs-1",
            "source": "nba_analytics.player_game_summary",
            "game_date": "2025-11-19",
            "affected_entities": {"players": ["lebronjames"]},
            "referenced_tables": [name],
        },
        cfg.registry,
    )
    tables = UndeclaredReads(m, lambda: 0.0).observe(cfg.registry, ev)
    assert tables and all(len(t) <= metrics.MAX_LABEL_CHARS for t in tables)  # as counted, bounded


Observe = Callable[[Metrics, LoadedConfig, str], None]
CASES: list[tuple[Observe, str, str]] = [
    (_unknown_source, "unknown_source_events", "source"),
    (_undeclared_table, "undeclared_reads", "table"),
]


def _labels(m: Metrics, counter: str, label: str) -> list[str]:
    return [
        s.labels[label]
        for fam in getattr(m, counter).collect()
        for s in fam.samples
        if s.name.endswith("_total")
    ]


@pytest.mark.parametrize(("observe", "counter", "label"), CASES, ids=["source", "table"])
def test_long_names_are_bounded_labels_and_stay_distinct(
    zero_cfg: LoadedConfig,
    caplog: pytest.LogCaptureFixture,
    observe: Observe,
    counter: str,
    label: str,
) -> None:
    """Two 200,000-character names differing at the end are two labels of at most 128 characters, logged as such."""
    caplog.set_level(logging.WARNING, logger="scoperouter.runtime")
    m = Metrics()
    names = [f"nba_raw.{'a' * LONG}{end}" for end in ("x", "y")]
    for name in names:
        observe(m, zero_cfg, name)
    labels = _labels(m, counter, label)
    assert len(set(labels)) == 2
    assert all(len(v) <= BOUND and v.startswith("nba_raw.aaa") for v in labels)
    assert len(m.render()) < 10 * BOUND + len(Metrics().render())
    assert len(caplog.records) == 2
    assert all(len(r.getMessage()) < 1000 for r in caplog.records)


@pytest.mark.parametrize(("n", "same"), [(0, True), (BOUND, True), (BOUND + 1, False)])
def test_only_a_name_past_the_bound_is_cut(n: int, same: bool) -> None:
    """A name of at most 128 characters is its own label; a longer one is cut to 128 with a digest."""
    assert metrics.MAX_LABEL_CHARS == BOUND
    name = "t" * n
    label = metrics.bounded_label(name)
    assert (label == name) == same
    assert len(label) == min(n, BOUND)
