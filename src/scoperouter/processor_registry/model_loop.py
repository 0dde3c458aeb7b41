"""Registry keys that close the loop (issue 14): ``run_retries``, ``completion_timeout``
and ``barrier`` per processor (and under ``defaults:``).

Invariant: the defaults keep today's behaviour -- no completion timeout, no barrier, and a
failed completion re-dispatches nothing (``run_retries: 0``; it is dead-lettered so that
it is visible). A key counts as configuring the loop when it is written, whatever its
value: ``run_retries: 0`` written is the loop without re-dispatches, not the loop off
(:func:`scoperouter.runtime.loop_runtime.loop_wanted`). The rules that use these keys live in :mod:`scoperouter.router.ledger`
and :mod:`scoperouter.router.barrier`; docs/ledger.md describes them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt

from .model_base import Duration, Identifier, Strict

NonNegativeInt = Annotated[StrictInt, Field(ge=0)]

RUN_RETRIES_DESCRIPTION = (
    "Re-dispatches of a trigger whose run reports failed (same trigger id, new attempt, "
    "exponential backoff) before it becomes a dead letter. Written, 0 included, it turns "
    "the closed loop on (0: a failed run is a dead letter at once)."
)
COMPLETION_TIMEOUT_DESCRIPTION = (
    "How long a dispatched trigger may stay without a completion naming it; then it is "
    "timed_out and re-dispatched once (at least), then dead-lettered. Unset: no timeout."
)
RETRY_BACKOFF_DESCRIPTION = (
    "Wait before the first re-dispatch of a failed or timed-out trigger; doubles per "
    "attempt, capped at 15m."
)
BARRIER_DESCRIPTION = (
    "Fan-in barrier: a due trigger for a date waits while an upstream processor has open "
    "work for that date (an open window or a trigger without completion)."
)


class MinCompleteSpec(Strict):
    """Graceful degradation at the barrier's timeout: run when these upstream processors
    are done and at least ``share`` of the upstreams that were busy are done."""

    critical: tuple[Identifier, ...] = Field(
        default=(), description="Upstream processors that must have completed."
    )
    share: Annotated[StrictFloat, Field(ge=0, le=1)] = Field(
        default=1.0,
        description="Share (0-1) of the upstreams busy when the trigger was held that must "
        "have completed.",
    )


class BarrierSpec(Strict):
    """How a processor's trigger waits for its upstreams (docs/ledger.md)."""

    timeout: Duration | None = Field(
        default=None,
        description="Longest wait for the upstreams; unset: wait until they are done.",
    )
    on_timeout: Literal["run", "hold"] = Field(
        default="run",
        description="At the timeout: run (send it, if min_complete allows) or hold (keep "
        "waiting until every upstream is done).",
    )
    min_complete: MinCompleteSpec | None = Field(
        default=None, description="What must be done before a timed-out trigger may run."
    )
