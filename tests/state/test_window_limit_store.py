"""A stored window follows the registry's current ``max_entities`` (SPEC section 2, Fallback
and Windows), on SQLite and PostgreSQL (``make_store``): a window kept over a restart whose
routes.yaml lowered the threshold fires at full date (``fallback_threshold``) when it holds
more ids than the new limit -- whether a new contribution joins it or not -- and a raised
threshold never turns a full-date window back into ids; a window holding ids of another
type than its processor's granularity now fires at full date (``date_granularity``,
``unmapped_entity_type``). The store gives the same trigger as the in-memory book
restored under the same registry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from state_support import DAY, StoreFactory, batch, contrib

from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router.decisions import Decision
from scoperouter.router.windows import WindowBook
from scoperouter.state.merge import contributions, registry_limits
from scoperouter.state.model import Admission, IngestBatch
from window_limit_support import one_processor_registry, run_ids

T0 = 1_700_000_000.0
LATER = T0 + 1e6


def shape(t: Any) -> tuple[Any, ...]:
    return (t.scope, t.entity_ids, t.reason, t.caused_by)


def stored(s: Any, *id_sets: tuple[str, ...] | None, limit: int) -> None:
    """Windows of processor p fed one contribution per id set under threshold ``limit``."""
    for i, ids in enumerate(id_sets):
        s.ingest(batch(contrib(f"e{i}", ids, max_entities=limit)), T0 + i)


@pytest.mark.parametrize(
    ("id_sets", "before", "after", "want"),
    [
        ((("a", "b"), ("c",)), 5, 2, ("date", None, "fallback_threshold", ("e0", "e1"))),
        ((("a", "b"), ("c",)), 5, 3, ("entities", ("a", "b", "c"), "entity_scope", ("e0", "e1"))),
        ((("a", "b"), ("c", "d")), 3, 100, ("date", None, "fallback_threshold", ("e0", "e1"))),
    ],
)
def test_restart_applies_the_current_limit_to_stored_windows(
    make_store: StoreFactory,
    id_sets: tuple[tuple[str, ...], ...],
    before: int,
    after: int,
    want: tuple[Any, ...],
) -> None:
    """A window no contribution joins after the restart fires under the limit now."""
    s = make_store()
    stored(s, *id_sets, limit=before)
    s.close()
    s = make_store()
    changed = s.apply_limits({"p": after}, 100)
    assert changed == (1 if after != before else 0)
    [w] = s.open_windows()
    assert w.max_entities == after
    [item] = s.fire_due(LATER)
    assert shape(item.trigger) == want


def test_unknown_processor_gets_the_default_limit(make_store: StoreFactory) -> None:
    """A window of a processor no longer in the registry follows the defaults' threshold."""
    s = make_store()
    s.ingest(batch(contrib("e0", ("a", "b", "c"), processor="gone", max_entities=5)), T0)
    assert s.apply_limits({"p": 100}, 2) == 1
    [item] = s.fire_due(LATER)
    assert shape(item.trigger) == ("date", None, "fallback_threshold", ("e0",))


@pytest.mark.parametrize(
    ("joining", "limit", "want"),
    [
        (("a",), 2, ("date", None, "fallback_threshold", ("e0", "e1"))),
        (("d",), 4, ("entities", ("a", "b", "c", "d"), "entity_scope", ("e0", "e1"))),
    ],
)
def test_a_contribution_merges_under_its_own_limit(
    make_store: StoreFactory, joining: tuple[str, ...], limit: int, want: tuple[Any, ...]
) -> None:
    """A stored window is merged under the joining contribution's threshold (the registry's
    now), lowered or raised, not the one it was opened with."""
    s = make_store()
    stored(s, ("a", "b", "c"), limit=3)
    s.close()
    s = make_store()
    s.ingest(batch(contrib("e1", joining, max_entities=limit)), T0 + 1)
    [item] = s.fire_due(LATER)
    assert shape(item.trigger) == want


_registry = one_processor_registry


def _decision(*ids: str) -> Decision:
    return run_ids(DAY, *ids)


def _store_agrees_with_the_book(
    make_store: StoreFactory, old: CompiledRegistry, new: CompiledRegistry
) -> None:
    """Two events' windows under ``old``, a restart under ``new``: the store's fired
    trigger is the in-memory book's (id, scope, reason, causes)."""
    book = WindowBook(old)
    s = make_store()
    for i, ids in enumerate((("a", "b"), ("c",))):
        ev = Event(event_id=f"e{i}", source="raw.a", game_date=DAY)
        book.add(ev, _decision(*ids), T0 + i)
        s.ingest(
            IngestBatch((Admission(ev.event_id, contributions(old, ev, [_decision(*ids)])),)),
            T0 + i,
        )
    s.close()
    s = make_store()
    s.apply_limits(*registry_limits(new))
    [item] = s.fire_due(LATER)
    [t] = WindowBook.restore(new, json.loads(json.dumps(book.snapshot()))).due(LATER)
    assert (item.trigger.trigger_id, shape(item.trigger)) == (t.trigger_id, shape(t))


@pytest.mark.parametrize(("before", "after"), [(5, 2), (5, 3), (3, 100), (2, 1)])
def test_store_and_book_agree_over_a_changed_limit(
    make_store: StoreFactory, before: int, after: int
) -> None:
    """The same decisions, a restart under another threshold: the store's trigger is the
    in-memory book's (id, scope, reason, causes)."""
    old, new = _registry(before), _registry(after)
    _store_agrees_with_the_book(make_store, old, new)


@pytest.mark.parametrize(
    ("processor", "granularity", "want"),
    [
        ("p", "player", ("entities", ("a", "b"), "entity_scope", ("e0", "e1"))),
        ("p", "date", ("date", None, "date_granularity", ("e0", "e1"))),
        ("p", "team", ("date", None, "unmapped_entity_type", ("e0", "e1"))),
        ("gone", "date", ("entities", ("a", "b"), "entity_scope", ("e0", "e1"))),
    ],
)
def test_restart_applies_the_current_granularity_to_stored_windows(
    make_store: StoreFactory, processor: str, granularity: str, want: tuple[Any, ...]
) -> None:
    """Player ids stored, a restart whose registry gives ``p`` another granularity: full
    date (a processor no longer in the registry keeps its ids)."""
    s = make_store()
    for i, ids in enumerate((("a",), ("b",))):
        s.ingest(batch(contrib(f"e{i}", ids, processor=processor)), T0 + i)
    s.close()
    s = make_store()
    changed = s.apply_limits({"p": 3}, 3, {"p": granularity})
    assert changed == (want[2] != "entity_scope")
    [item] = s.fire_due(LATER)
    assert shape(item.trigger) == want


@pytest.mark.parametrize("granularity", ["player", "team", "date"])
def test_store_and_book_agree_over_a_changed_granularity(
    make_store: StoreFactory, granularity: str
) -> None:
    """The same decisions, a restart under another granularity: the store's trigger is the
    in-memory book's (id, scope, reason, causes)."""
    old, new = _registry(5), _registry(5, granularity)
    _store_agrees_with_the_book(make_store, old, new)
