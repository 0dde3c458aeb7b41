"""Work of processors routes.yaml does not name: left to the replicas that route them, or
taken over as an orphan.

A restart with a processor renamed or removed in routes.yaml finds its open windows and its
triggers still to send in the state store. They are not dropped: they fire and are delivered
to ``defaults.target`` (the dispatcher's lane of a processor not in the registry), which the
renamed processor's service may never read. On a shared store (PostgreSQL) a processor
another replica routes -- a rolling deploy that adds it, a replica of the next revision --
is no orphan: its windows and rows are left to that replica
(:mod:`scoperouter.state.pg_roster`) until no replica has routed it for the grace
(``ORPHAN_AFTER_LEASES`` leases). Invariant: such work is said -- at every start a WARNING
naming each orphan processor with its counts and the gauge
``scoperouter_unknown_processor_work{kind}``; the processors left to other replicas when
that set changes (INFO, gauge ``scoperouter_foreign_processors``); every fire or page here
that takes an orphan's work (WARNING, ``scoperouter_orphan_work_total{kind}``) -- and
nothing here changes what is routed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from scoperouter.runtime.metrics import Metrics

logger = logging.getLogger("scoperouter.runtime")


def announce_unknown(
    work: Mapping[str, tuple[int, int]],
    known: Collection[str],
    metrics: Metrics,
    elsewhere: Collection[str] = (),
) -> dict[str, tuple[int, int]]:
    """``work``: (open windows, triggers to send) per processor in the store; ``known``: the
    processors of routes.yaml; ``elsewhere``: those other replicas route (their work waits
    for them). Logs one WARNING when some processor of ``work`` is not known, sets the
    gauge either way, and returns the unknown ones' work."""
    unknown = {p: (w, t) for p, (w, t) in sorted(work.items()) if p not in known and (w or t)}
    windows = sum(w for w, _t in unknown.values())
    triggers = sum(t for _w, t in unknown.values())
    metrics.unknown_processor_work.labels("windows").set(windows)
    metrics.unknown_processor_work.labels("triggers").set(triggers)
    if unknown:
        left = sorted(p for p in unknown if p in elsewhere)
        logger.warning(
            "the state store holds work of %d processors not in routes.yaml (renamed or "
            "removed): %s; their windows fire and their triggers are sent to "
            "defaults.target%s. Put the processors back (or rename them back) to keep their "
            "own targets, or let it go once that target is known to handle them",
            len(unknown),
            ", ".join(f"{p} ({w} open windows, {t} triggers to send)" for p, (w, t) in
                      unknown.items()),
            f" -- once no replica has routed them for the grace, for those another replica "
            f"routes now: {', '.join(left)}" if left else "",
            extra={"unknown_processors": sorted(unknown), "windows": windows,
                   "triggers": triggers, "routed_elsewhere": left},
        )  # fmt: skip
    return unknown


class Roster:
    """A router's side of the store's roster: when to say again which processors it routes
    (every ``every_s``), the processors left to other replicas, the orphans taken here."""

    def __init__(self, known: Collection[str], metrics: Metrics, every_s: float) -> None:
        self.known = frozenset(known)
        self.metrics = metrics
        self.every_s = every_s
        self.elsewhere: frozenset[str] = frozenset()
        self._said = float("-inf")

    def due(self, now: float) -> bool:
        """Whether the processors are to be said again (:meth:`StateStore.announce_processors`)."""
        return now - self._said >= self.every_s

    def seen(self, elsewhere: frozenset[str], now: float) -> None:
        """The store's answer at ``now``: the processors other replicas route; said when
        that set changes."""
        self._said = now
        came, went = elsewhere - self.elsewhere, self.elsewhere - elsewhere
        self.elsewhere = elsewhere
        self.metrics.foreign_processors.set(len(elsewhere))
        if came:
            logger.info(
                "other replicas route processors this routes.yaml lacks (a rolling "
                "deploy?): %s; their windows and triggers are left to them",
                ", ".join(sorted(came)),
                extra={"foreign_processors": sorted(came)},
            )
        if went:
            logger.info(
                "no other replica routes %s (not in this routes.yaml) any longer: their "
                "work left here goes to defaults.target",
                ", ".join(sorted(went)),
                extra={"foreign_processors_gone": sorted(went)},
            )

    def taken(self, processors: Iterable[str], kind: str) -> int:
        """Windows fired or rows paged here (``kind``: windows, triggers) of ``processors``:
        those not in routes.yaml are orphans' (no replica routes them), counted and said
        once per call. Returns how many."""
        orphans = Counter(p for p in processors if p not in self.known)
        n = sum(orphans.values())
        if n:
            self.metrics.orphan_work.labels(kind).inc(n)
            logger.warning(
                "took over %d %s of processors not in routes.yaml that no replica routes "
                "(renamed or removed): %s; sent to defaults.target",
                n,
                kind,
                ", ".join(f"{p} ({k})" for p, k in sorted(orphans.items())),
                extra={"orphan_processors": sorted(orphans), "kind": kind, "count": n},
            )
        return n
