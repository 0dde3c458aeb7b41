"""A window restored or handed to a registry with another ``max_entities`` or granularity
follows the registry in force (SPEC section 2, Fallback and Windows): more ids than the
current limit fire at full date (``fallback_threshold``), ids of another type than the
granularity now fire at full date (``date_granularity``, ``unmapped_entity_type``), and a
full-date window stays full date."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from planner_support import D

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.journal_replay import JournalRow, rebuild
from scoperouter.router.windows import WindowBook
from window_limit_support import one_processor_registry

LATER = 1e9  # past every deadline
IdSets = tuple[tuple[str, ...], ...]


reg = one_processor_registry


def ev(eid: str) -> Event:
    return Event(event_id=eid, source="raw.a", game_date=D)


def ents(*ids: str) -> Decision:
    return Decision(
        processor="p",
        action="run",
        scope="entities",
        entity_type="player",
        entity_ids=tuple(sorted(ids)),
        dates=(D,),
        reason="entity_scope",
    )


def book_with(limit: int, id_sets: IdSets) -> WindowBook:
    """A book under threshold ``limit`` fed one decision per id set (events e0, e1, ...)."""
    book = WindowBook(reg(limit))
    for i, ids in enumerate(id_sets):
        book.add(ev(f"e{i}"), ents(*ids), float(i))
    return book


def via_restore(before: int, id_sets: IdSets, now: CompiledRegistry) -> list[Trigger]:
    """A restart: the book's snapshot restored under the registry now."""
    snap = json.loads(json.dumps(book_with(before, id_sets).snapshot()))
    return WindowBook.restore(now, snap).due(LATER)


def via_handover(before: int, id_sets: IdSets, now: CompiledRegistry) -> list[Trigger]:
    """The engine handed to the registry now (``RoutingEngine.under``)."""
    book = book_with(before, id_sets)
    engine = RoutingEngine(book.registry, book=book)
    return [f.trigger for f in engine.under(now).tick(LATER)]


def via_journal(before: int, id_sets: IdSets, now: CompiledRegistry) -> list[Trigger]:
    """The closed loop's restart: the journal replayed under its writer, then handed on."""
    rows: list[JournalRow] = [
        ("add", float(i), ev(f"e{i}").model_dump_json(), ents(*ids).model_dump_json())
        for i, ids in enumerate(id_sets)
    ]
    engine, _n = rebuild(now, reg(before), None, rows, loop=False)
    return [f.trigger for f in engine.tick(LATER)]


PATHS: dict[str, Callable[[int, IdSets, CompiledRegistry], list[Trigger]]] = {
    "restore": via_restore,
    "handover": via_handover,
    "journal": via_journal,
}


def shape(t: Trigger) -> tuple[Any, ...]:
    return (t.scope, t.entity_ids, t.reason, t.caused_by)


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize(
    ("before", "id_sets", "after", "want"),
    [
        # 3 ids under 5, then a limit of 2: full date, every cause kept
        (5, (("a", "b"), ("c",)), 2, ("date", None, "fallback_threshold", ("e0", "e1"))),
        # exactly the new limit: still entities (the threshold is inclusive)
        (5, (("a", "b"), ("c",)), 3, ("entities", ("a", "b", "c"), "entity_scope", ("e0", "e1"))),
        # full date already (4 ids past 3); a raised limit never shrinks it back to ids
        (3, (("a", "b"), ("c", "d")), 100, ("date", None, "fallback_threshold", ("e0", "e1"))),
    ],
)
def test_the_limit_in_force_decides_the_scope(
    path: str,
    before: int,
    id_sets: IdSets,
    after: int,
    want: tuple[Any, ...],
) -> None:
    """A window fires under the current registry's max_entities, however it got there."""
    [t] = PATHS[path](before, id_sets, reg(after))
    assert shape(t) == want


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize(
    ("granularity", "want"),
    [
        ("player", ("entities", ("a", "b"), "entity_scope", ("e0", "e1"))),
        ("date", ("date", None, "date_granularity", ("e0", "e1"))),
        ("team", ("date", None, "unmapped_entity_type", ("e0", "e1"))),
    ],
)
def test_the_granularity_in_force_decides_the_scope(
    path: str, granularity: str, want: tuple[Any, ...]
) -> None:
    """Player ids of a window under a registry whose granularity changed fire full date."""
    [t] = PATHS[path](5, (("a",), ("b",)), reg(5, granularity))
    assert shape(t) == want
