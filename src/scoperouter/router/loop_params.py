"""A processor's closed-loop settings, resolved from the registry: ``run_retries``,
``completion_timeout``, ``barrier`` (processor value, else ``defaults:``), plus the
router-wide re-dispatch backoff.

Invariant: pure lookups; a processor no longer in the registry gets the defaults (its
open triggers are never dropped). ``LoopOverrides`` lets a driver (the demo, tests) force
settings for every processor without editing ``routes.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.model_loop import BarrierSpec
from scoperouter.processor_registry.models import parse_duration

# Re-dispatch backoff after a failed or timed-out attempt: base * 2 ** (n - 1), capped.
# Production's auto-retry uses 15 min * 2 (orchestration/cloud_functions/
# auto_retry_processor/main.py:61-62); a router re-dispatches per trigger, so it starts lower.
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 900.0


@dataclass(frozen=True, slots=True)
class LoopParams:
    run_retries: int
    completion_timeout_s: float | None
    barrier: BarrierSpec | None
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_cap_s: float = BACKOFF_CAP_S

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1 just ended)."""
        return float(min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True, slots=True)
class LoopOverrides:
    """Settings forced on every processor (None: keep the registry's)."""

    run_retries: int | None = None
    completion_timeout_s: float | None = None
    barrier: BarrierSpec | None = None
    no_barrier: bool = False
    backoff_base_s: float | None = None


def loop_params(
    registry: CompiledRegistry, processor: str, overrides: LoopOverrides | None = None
) -> LoopParams:
    """The settings of ``processor`` (registry value, else defaults, then overrides)."""
    d = registry.spec.defaults
    p = registry.processors.get(processor)
    spec = p.spec if p is not None else None
    retries = spec.run_retries if spec is not None and spec.run_retries is not None else None
    timeout = spec.completion_timeout if spec is not None else None
    barrier = spec.barrier if spec is not None else None
    timeout_text = timeout or d.completion_timeout
    backoff = spec.retry_backoff if spec is not None and spec.retry_backoff else d.retry_backoff
    params = LoopParams(
        run_retries=retries if retries is not None else d.run_retries,
        completion_timeout_s=parse_duration(timeout_text) if timeout_text else None,
        barrier=barrier if barrier is not None else d.barrier,
        backoff_base_s=parse_duration(backoff),
    )
    o = overrides
    if o is None:
        return params
    return LoopParams(
        run_retries=o.run_retries if o.run_retries is not None else params.run_retries,
        completion_timeout_s=o.completion_timeout_s
        if o.completion_timeout_s is not None
        else params.completion_timeout_s,
        barrier=None if o.no_barrier else (o.barrier or params.barrier),
        backoff_base_s=o.backoff_base_s if o.backoff_base_s is not None else params.backoff_base_s,
    )
