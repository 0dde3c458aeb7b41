"""Count and warn about events whose source the registry names nowhere (``unknown_source``).

Invariant: no such event goes unnoticed. Each one increments
``scoperouter_unknown_source_events_total{source}`` and, per source, at most one WARNING
per ``interval_s`` is logged (the first at once, later ones with the number of events since
the previous warning). The label set is bounded: past ``max_sources`` distinct sources,
new ones are counted under the label :data:`OTHER` (a producer sending random names must
not grow the metrics endpoint without bound); the WARNING still names the real source. A
source longer than :data:`~scoperouter.runtime.metrics.MAX_LABEL_CHARS` is named, in the
label and the WARNING, by its :func:`~scoperouter.runtime.metrics.bounded_label` (cut, with
a digest of the whole name): neither grows with the length of the names producers send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter

from scoperouter.runtime.metrics import Metrics, bounded_label

OTHER = "(other)"
logger = logging.getLogger("scoperouter.runtime")


class UnknownSources:
    """Per-source counter and rate-limited warning (one instance per router)."""

    def __init__(
        self,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        interval_s: float = 60.0,
        max_sources: int = 200,
    ) -> None:
        self.counter: Counter = metrics.unknown_source_events
        self.clock = clock
        self.interval_s = interval_s
        self.max_sources = max_sources
        self._labels: set[str] = set()
        self._last_warned: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def observe(self, source: str, event_id: str) -> None:
        """One event whose source is unknown to the registry."""
        source = bounded_label(source)  # (the label, the WARNING and the keys kept here)
        label = source
        if label not in self._labels:
            if len(self._labels) >= self.max_sources:
                label = OTHER
            else:
                self._labels.add(label)
        self.counter.labels(label).inc()
        now = self.clock()
        self._since[source] = self._since.get(source, 0) + 1
        last = self._last_warned.get(source)
        if last is not None and now - last < self.interval_s:
            return
        n = self._since.pop(source)
        if len(self._last_warned) >= self.max_sources and source not in self._last_warned:
            oldest = next(iter(self._last_warned))
            del self._last_warned[oldest]
            self._since.pop(oldest, None)
        self._last_warned[source] = now
        logger.warning(
            "unknown_source: %d event(s) from source %r, which routes.yaml names nowhere "
            "(no input, publishes or sources: entry); they route nothing",
            n,
            source,
            extra={"source": source, "event_id": event_id, "events": n, "reason": "unknown_source"},
        )
