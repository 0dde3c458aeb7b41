"""Count and warn about tables runs read that routes.yaml does not declare (drift).

Invariant: every (processor, table) pair a completion event's ``referenced_tables`` names
and the processor's inputs lack increments ``scoperouter_undeclared_reads_total{processor,
table}``; per pair at most one WARNING per ``interval_s`` is logged (the first at once). The
label set is bounded (past ``max_pairs``, new pairs count under :data:`OTHER`), and so is
each table label: a name longer than :data:`~scoperouter.runtime.metrics.MAX_LABEL_CHARS` is
counted and logged as its :func:`~scoperouter.runtime.metrics.bounded_label` (cut, with a
digest of the whole name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from scoperouter.lineage.drift import undeclared_reads
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.runtime.metrics import Metrics, bounded_label

OTHER = "(other)"
logger = logging.getLogger("scoperouter.runtime")


class UndeclaredReads:
    """Per (processor, table) counter and rate-limited warning (one instance per router)."""

    def __init__(
        self,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        interval_s: float = 300.0,
        max_pairs: int = 500,
    ) -> None:
        self.counter = metrics.undeclared_reads
        self.clock = clock
        self.interval_s = interval_s
        self.max_pairs = max_pairs
        self._labels: set[tuple[str, str]] = set()
        self._last_warned: dict[tuple[str, str], float] = {}

    def observe(self, registry: CompiledRegistry, ev: Event) -> tuple[str, ...]:
        """Count the undeclared reads of one accepted completion event; return the tables as
        counted and logged (each a bounded label)."""
        proc, names = undeclared_reads(registry, ev.source, ev.referenced_tables)
        if proc is None:
            return ()
        now = self.clock()
        tables = tuple(map(bounded_label, names))
        for table in tables:
            pair = (proc, table)
            if pair not in self._labels and len(self._labels) < self.max_pairs:
                self._labels.add(pair)
            self.counter.labels(*(pair if pair in self._labels else (OTHER, OTHER))).inc()
            last = self._last_warned.get(pair)
            if last is not None and now - last < self.interval_s:
                continue
            if len(self._last_warned) >= self.max_pairs and pair not in self._last_warned:
                del self._last_warned[next(iter(self._last_warned))]
            self._last_warned[pair] = now
            logger.warning(
                "undeclared_read: %s read %s, which routes.yaml does not declare as one of "
                "its inputs: a change there will not re-run it (add the input, or "
                "lineage.ignore_tables if it is on purpose)",
                proc,
                table,
                extra={"processor": proc, "table": table, "event_id": ev.event_id,
                       "reason": "undeclared_read"},
            )  # fmt: skip
        return tables
