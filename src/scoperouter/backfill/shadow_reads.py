"""Which live runs of a backfill read the runs of an upstream in shadow mode (pure).

Invariant: a run's mode is the one stored with its first attempt (``backfill_runs.mode``),
else -- not attempted yet -- its processor's now, the mode it will be sent in; the answer
names every processor with a live run whose plan edge reaches a shadow run of the same
backfill, with those upstreams (plan order), and nothing else.

Why it is said: the targets executor sends a shadow run nothing and marks it done at once
(production still runs that processor), so a live run reading it reads the upstream's
existing output, not a re-run one, and the backfill ends ``done`` all the same. It is a
warning, not a refusal: flipping processors live one at a time is the rollout
(docs/rollout.md), and a backfill of a live processor over shadow upstreams is legitimate
once their output is right (docs/backfill.md, Executors).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

from scoperouter.backfill.plan import BackfillPlan

ShadowReads = dict[str, tuple[str, ...]]  # live reader -> the shadow upstreams it reads


def shadow_reads(
    plan: BackfillPlan, stored: Mapping[int, str], shadow: frozenset[str]
) -> ShadowReads:
    """Each processor with a live run reading a shadow run of ``plan``, and those upstreams.
    ``stored``: the runs' stored modes by index (those attempted); ``shadow``: the
    processors whose runs are sent in shadow when first attempted now."""

    def mode(i: int) -> str:
        return stored.get(i) or ("shadow" if plan.runs[i].processor in shadow else "live")

    shadow_days: dict[str, list[int]] = {}  # upstream -> its shadow runs' days, sorted
    for i, r in enumerate(plan.runs):
        if mode(i) == "shadow":
            shadow_days.setdefault(r.processor, []).append(r.day.toordinal())
    if not shadow_days:
        return {}
    for days in shadow_days.values():
        days.sort()
    found: dict[str, set[str]] = {}
    for i, r in enumerate(plan.runs):
        if mode(i) != "live":
            continue
        for dep in r.deps:
            up = shadow_days.get(dep.upstream)
            if up is None:
                continue
            k = bisect_left(up, dep.lo.toordinal())
            if k < len(up) and up[k] <= dep.hi.toordinal():
                found.setdefault(r.processor, set()).add(dep.upstream)
    return {
        p: tuple(u for u in plan.processors if u in found[p]) for p in plan.processors if p in found
    }


def shadow_warning(reads: ShadowReads, rerun: str = "--rerun") -> str | None:
    """What to tell the user about :func:`shadow_reads`'s answer (None: nothing to tell);
    ``rerun``: how the request plans the backfill again (the CLI's flag, the POST's key)."""
    if not reads:
        return None
    pairs = "; ".join(f"{p} reads {', '.join(ups)}" for p, ups in reads.items())
    return (
        "warning: live processors of this backfill read the runs of upstreams in shadow "
        f"mode, which it sends nothing (marked done at once; production still runs them): "
        f"{pairs}. Their runs read the upstream's existing output, not a re-run one. They "
        "are not held: bring the shadow upstream's output up to date first where it runs "
        f"(its own backfill), or run this backfill once it is live ({rerun} when its runs "
        "here were already done in shadow)"
    )
