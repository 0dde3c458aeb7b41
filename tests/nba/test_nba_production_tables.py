"""routes.yaml against production's unrouted table reads (tests/nba/production_tables.py):
each missed update is an input, each deliberate read is in ``lineage.ignore_tables``; each
read whose table is named at run time resolves to an input, an ignored table, the
processor's own output or a CTE."""

from __future__ import annotations

import pytest
from nba_support import registry
from production_tables import (
    ALREADY_INPUT,
    FALSE_POSITIVE,
    HAND_FOUND,
    IGNORED,
    INPUT,
    NO_TABLE,
    OUT_OF_BAND,
    OWN,
    PRODUCTION_TABLES,
    ROUTED_AS,
    RUNTIME_TABLES,
)

REG = registry()


def _ignored(processor: str) -> set[str]:
    lineage = REG.processors[processor].spec.lineage
    return set(lineage.ignore_tables) if lineage else set()


@pytest.mark.parametrize(
    ("processor", "table"),
    sorted(k for k, v in (PRODUCTION_TABLES | HAND_FOUND).items() if v[1] == INPUT),
)
def test_missed_update_is_routed(processor: str, table: str) -> None:
    """A table whose change changes the output is an input with ``fields`` and a declared
    source (a view: the table under it, the view's own name ignored)."""
    routed = ROUTED_AS.get(table, table)
    ci = REG.processors[processor].inputs.get(routed)
    assert ci is not None, f"{processor} does not route {routed}"
    assert ci.fields is not None or routed != table
    assert routed in REG.spec.sources
    assert (table in _ignored(processor)) == (routed != table)


@pytest.mark.parametrize(
    ("processor", "table"),
    sorted(k for k, v in (PRODUCTION_TABLES | HAND_FOUND).items() if v[1] == IGNORED),
)
def test_deliberate_read_is_ignored(processor: str, table: str) -> None:
    """A read production makes on purpose without routing on it is in ``ignore_tables``."""
    assert table in _ignored(processor)
    assert table not in REG.processors[processor].inputs


@pytest.mark.parametrize(
    ("processor", "table"),
    sorted(k for k, v in PRODUCTION_TABLES.items() if v[1] == FALSE_POSITIVE),
)
def test_false_positive_is_neither_routed_nor_ignored(processor: str, table: str) -> None:
    """A CTE lineage once took for a table is no table: neither an input nor ignored."""
    assert table not in REG.processors[processor].inputs
    assert table not in _ignored(processor)


def _runtime(kind: str) -> list[tuple[str, str, str]]:
    return sorted((at, p, t) for at, (p, t, k, _why) in RUNTIME_TABLES.items() if k == kind)


@pytest.mark.parametrize(("at", "processor", "table"), _runtime(ALREADY_INPUT))
def test_run_time_name_of_an_input(at: str, processor: str, table: str) -> None:
    """A table named at run time that the processor routes on: nothing to add."""
    assert table in REG.processors[processor].inputs, at


@pytest.mark.parametrize(("at", "processor", "table"), _runtime(IGNORED))
def test_run_time_name_of_a_deliberate_read(at: str, processor: str, table: str) -> None:
    """A table named at run time and read on purpose without routing: ignored, no input."""
    assert table in _ignored(processor), at
    assert table not in REG.processors[processor].inputs


@pytest.mark.parametrize(("at", "processor", "table"), _runtime(OWN))
def test_run_time_name_of_the_own_output(at: str, processor: str, table: str) -> None:
    """A table named at run time that is the processor's own output: nothing to route."""
    assert REG.processors[processor].spec.publishes == table, at


@pytest.mark.parametrize(("at", "processor", "table"), _runtime(NO_TABLE))
def test_run_time_name_of_a_cte(at: str, processor: str, table: str) -> None:
    """A CTE picked at run time is no table: neither an input nor ignored."""
    assert table not in REG.processors[processor].inputs, at
    assert table not in _ignored(processor)


def test_hand_found_reads_are_not_lineage_findings() -> None:
    """HAND_FOUND holds only reads PRODUCTION_TABLES (lineage's findings) does not."""
    assert not set(HAND_FOUND) & set(PRODUCTION_TABLES)


def test_every_ignored_table_is_classified() -> None:
    """Every ``lineage.ignore_tables`` entry of routes.yaml has its reason here."""
    listed = {(p, t) for p in REG.processor_names for t in _ignored(p)}
    runtime = {(p, t) for p, t, k, _w in RUNTIME_TABLES.values() if k == IGNORED}
    known = set(PRODUCTION_TABLES) | set(HAND_FOUND) | runtime | set(OUT_OF_BAND)
    assert listed <= known, sorted(listed - known)


@pytest.mark.parametrize(("processor", "table"), sorted(OUT_OF_BAND))
def test_a_read_in_shared_code_is_ignored_not_routed(processor: str, table: str) -> None:
    """A read of shared code re-run out of band is in ignore_tables and is no input."""
    assert table in _ignored(processor), OUT_OF_BAND[(processor, table)]
    assert table not in REG.processors[processor].inputs
