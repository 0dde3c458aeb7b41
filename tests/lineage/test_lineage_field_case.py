"""Lineage compares the columns the SQL reads with an input's fields as the router does:
ignoring case (column names are case-insensitive; field_names), so a column spelled with
capitals in the SQL or the registry is no field_not_listed finding."""

from __future__ import annotations

import pytest

from scoperouter.lineage.diff import diff_processor
from scoperouter.lineage.reads import Origin, Reads
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec


def _registry(key: str, names: list[str]) -> CompiledRegistry:
    return compile_registry(
        RoutesSpec.model_validate(
            {
                "version": 1,
                "entities": {"player": {}},
                "processors": {
                    "p": {
                        "phase": 3,
                        "granularity": "player",
                        "inputs": [{"source": "raw.a", key: names}],
                    }
                },
            }
        )
    )


# (the input's key and names, the column the SQL reads, a field_not_listed finding?)
CASES = [
    ("fields", ["points"], "points", False),
    ("fields", ["points"], "Points", False),
    ("fields", ["POINTS"], "points", False),
    ("fields", ["points"], "rebounds", True),
    ("ignore_fields", ["arena"], "ARENA", True),
    ("ignore_fields", ["Arena"], "arena", True),
    ("ignore_fields", ["arena"], "Points", False),
]


@pytest.mark.parametrize(("key", "names", "column", "flagged"), CASES)
def test_lineage_matches_fields_ignoring_case(
    key: str, names: list[str], column: str, flagged: bool
) -> None:
    """A column read is listed (or ignored) by an input's field of any case, as routing has it."""
    reads = Reads()
    reads.add_column("raw.a", column, Origin("p.sql", 3))
    found = diff_processor(_registry(key, names), "p", reads)
    got = [f for f in found if f.code == "field_not_listed"]
    assert bool(got) is flagged, got
