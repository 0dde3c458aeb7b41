"""Work of processors routes.yaml no longer names, found at start.

A restart with a processor renamed or removed in routes.yaml finds its open windows and its
triggers still to send in the state store. They are not dropped: they fire and are delivered
to ``defaults.target`` (the dispatcher's lane of a processor not in the registry), which the
renamed processor's service may never read. Invariant: at every start, such work is said
once -- a WARNING naming each processor with its counts, and the gauge
``scoperouter_unknown_processor_work{kind}`` -- and nothing here changes what is routed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from scoperouter.runtime.metrics import Metrics

logger = logging.getLogger("scoperouter.runtime")


def announce_unknown(
    work: Mapping[str, tuple[int, int]], known: Collection[str], metrics: Metrics
) -> dict[str, tuple[int, int]]:
    """``work``: (open windows, triggers to send) per processor in the store; ``known``: the
    processors of routes.yaml. Logs one WARNING when some processor of ``work`` is not
    known, sets the gauge either way, and returns the unknown ones' work."""
    unknown = {p: (w, t) for p, (w, t) in sorted(work.items()) if p not in known and (w or t)}
    windows = sum(w for w, _t in unknown.values())
    triggers = sum(t for _w, t in unknown.values())
    metrics.unknown_processor_work.labels("windows").set(windows)
    metrics.unknown_processor_work.labels("triggers").set(triggers)
    if unknown:
        logger.warning(
            "the state store holds work of %d processors not in routes.yaml (renamed or "
            "removed): %s; their windows fire and their triggers are sent to "
            "defaults.target. Put the processors back (or rename them back) to keep their "
            "own targets, or let it go once that target is known to handle them",
            len(unknown),
            ", ".join(f"{p} ({w} open windows, {t} triggers to send)" for p, (w, t) in
                      unknown.items()),
            extra={"unknown_processors": sorted(unknown), "windows": windows,
                   "triggers": triggers},
        )  # fmt: skip
    return unknown
