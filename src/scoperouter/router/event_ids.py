"""A window's ``caused_by``: the event ids that entered it, as an immutable capped set.

Invariant: an :class:`EventIds` never changes (:meth:`EventIds.add` returns a new one
sharing its tail); it keeps at most :data:`CAUSED_BY_CAP` ids, the smallest, as the stores
keep them (:func:`scoperouter.state.merge.add_cause`: an id already kept, an event delivered
again, adds nothing), and :attr:`EventIds.more` counts the ids it dropped, so replay and
``serve`` list the same ``caused_by`` and ``caused_by_more``.

What ``more`` counts. The largest ids are dropped, so every dropped id lies above every
kept one. Ids added one at a time (:meth:`EventIds.add`, ``add_cause``; a store's batch
appended to its row, ``union_causes``) count each id not kept while the set is full: the
ids dropped, exactly -- but an id dropped and then delivered again (past the dedup horizon)
is counted again, so ``more`` is an upper bound then (PostgreSQL unites a batch's causes
with its row's: an id a newcomer of the same batch pushed out and delivered again in that
batch counts once there, twice here). Two windows joined (a hand-over
between stores, :func:`join_causes`) keep the smallest ids of both; which ids each had
dropped is not known, nor whether the other's are among them, so the join counts what is
known to be distinct: the ids it pushes out, plus the larger of the two counts less the
other window's ids that may be among the ones it counted (those above its largest kept
id). That count is symmetric and idempotent (``join_causes(a, a) == a``; joining a window
into one it was already joined into changes nothing: a hand-over carried again writes
nothing twice), never below either window's count nor the ids the join pushes out, and --
the two counts exact -- never above the distinct ids the two windows dropped: a lower
bound, short of the sum when both windows dropped ids none of the other's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

CAUSED_BY_CAP = 1000
"""Most event ids a window (and its trigger's ``caused_by``) lists; later ones are only
counted (``caused_by_more``): a hot window's trigger stays small."""


class EventIds:
    """An immutable set of event ids with O(1) :meth:`add` (a window's ``caused_by``).

    A hot window merges thousands of events; copying a frozenset per merge would make that
    quadratic, so the ids are a persistent chain (each :meth:`add` shares its tail) and
    become a frozenset only when read (:meth:`frozen`, cached per node). At most
    :data:`CAUSED_BY_CAP` ids are kept, the smallest, as the stores keep them
    (:func:`scoperouter.state.merge.add_cause`: an add past the cap is O(cap) there and here,
    so replay and ``serve`` list the same ``caused_by``); :attr:`more` counts the rest."""

    __slots__ = ("_frozen", "_head", "_n", "_tail", "more")

    def __init__(self, ids: Iterable[str] = (), more: int = 0) -> None:
        self._head: str | None = None
        self._tail: EventIds | None = None
        kept = sorted(set(ids))
        self._frozen: frozenset[str] | None = frozenset(kept[:CAUSED_BY_CAP])
        self._n = len(self._frozen)
        self.more: int = more + max(0, len(kept) - CAUSED_BY_CAP)

    def add(self, event_id: str) -> EventIds:
        """These ids with ``event_id`` added; an id already kept adds nothing (an event
        delivered again: the stores' sets ignore it too)."""
        if event_id == self._head:
            return self
        if self._n >= CAUSED_BY_CAP:
            # _n counts adds, an id added again too: the ids decide whether the set is full
            ids = self.frozen()
            self._n = len(ids)  # a cache, as _frozen: the value does not change
            if event_id in ids:
                return self
            if self._n >= CAUSED_BY_CAP:  # full: keep the smallest ids (as add_cause)
                node = EventIds.__new__(EventIds)
                node._tail, node._frozen = self, None
                node._head, node._n, node.more = None, self._n, self.more + 1
                if event_id < (top := max(ids)):  # a smaller newcomer takes the top's place
                    node._tail, node._frozen = None, ids.difference((top,)).union((event_id,))
                return node
        node = EventIds.__new__(EventIds)
        node._tail, node._frozen = self, None
        node._head, node._n, node.more = event_id, self._n + 1, self.more
        return node

    def frozen(self) -> frozenset[str]:
        """The ids as a frozenset (computed once per node)."""
        if self._frozen is not None:
            return self._frozen
        heads: list[str] = []
        node: EventIds | None = self
        while node is not None and node._frozen is None:
            if node._head is not None:
                heads.append(node._head)
            node = node._tail
        base = node._frozen if node is not None and node._frozen is not None else frozenset()
        self._frozen = base.union(heads)
        return self._frozen

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.frozen()))

    def __len__(self) -> int:
        return len(self.frozen())

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.frozen()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventIds):
            return self.frozen() == other.frozen() and self.more == other.more
        if isinstance(other, frozenset | set):
            return self.frozen() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.frozen())

    def __repr__(self) -> str:
        more = f", more={self.more}" if self.more else ""
        return f"EventIds({sorted(self.frozen())!r}{more})"


def join_causes(a: EventIds, b: EventIds) -> EventIds:
    """Two windows' causes as one window's (a hand-over joining two windows of one key):
    the :data:`CAUSED_BY_CAP` smallest ids of both; ``more`` counts the ids of both the cap
    pushes out, plus the larger of ``a.more`` and ``b.more``, each less the other window's
    ids that may be among the ones it dropped (the module's rule: symmetric, idempotent, a
    lower bound)."""
    ka, kb = a.frozen(), b.frozen()
    every = ka | kb
    kept = every if len(every) <= CAUSED_BY_CAP else frozenset(sorted(every)[:CAUSED_BY_CAP])
    counted = max(0, a.more - _above(kb, ka), b.more - _above(ka, kb))
    return EventIds(kept, len(every) - len(kept) + counted)


def _above(ids: frozenset[str], kept: frozenset[str]) -> int:
    """How many of ``ids`` lie above every id of ``kept`` (all, when it is empty): the ones
    that may be among the ids the window keeping ``kept`` dropped."""
    if not kept:
        return len(ids)
    top = max(kept)
    return sum(1 for x in ids if x > top)
