"""The run executor interface: start one (processor, date) run and await its completion.

Invariant: an executor never raises for a failed run -- it returns a :class:`RunOutcome`
with ``ok=False`` and an error text (the runner also turns an exception into one, so a
buggy executor fails runs instead of the backfill). Executors here are generic:

* :class:`CallableExecutor` -- an in-process function per run (the NBA reference pipeline
  adapter lives in :mod:`scoperouter.examples.nba.backfill_executor`; tests use it too).
* :class:`scoperouter.backfill.daemon_executor.TargetExecutor` -- a trigger with
  ``reason: backfill`` through the registry's target, then the completion ledger.

An executor with dispatch modes (:class:`ModalExecutor`: the targets one) says which mode a
processor's run would be sent in now (:meth:`ModalExecutor.mode_now`); the runner stores
that mode with a run's first attempt and hands the stored one to every attempt
(``execute(..., mode=)``), which the executor then follows whatever the processor's mode
now (:mod:`scoperouter.backfill.store`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

BACKFILL_REASON = "backfill"


@dataclass(frozen=True, slots=True)
class RunOutcome:
    ok: bool
    rows: int | None = None  # entity rows the run processed, when known
    seconds: float = 0.0  # how long it took (0 = unknown)
    error: str | None = None
    skipped: str | None = None  # done without work, and why (e.g. "shadow")


@runtime_checkable
class RunExecutor(Protocol):
    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        """Run ``processor`` at date scope for ``day``; return when it has finished."""
        ...


@runtime_checkable
class ModalExecutor(Protocol):
    """A :class:`RunExecutor` whose runs are sent in a dispatch mode (``live`` / ``shadow``)."""

    def mode_now(self, processor: str) -> str | None:
        """The mode a first attempt of a run of ``processor`` is sent in now (None: none,
        the run is executed without one)."""
        ...

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int, mode: str | None = None
    ) -> RunOutcome:
        """As :meth:`RunExecutor.execute`, sent by ``mode`` (None: :meth:`mode_now`)."""
        ...


class CallableExecutor:
    """Runs ``fn(processor, day)`` in-process; its return value is the rows processed.
    An exception is a failed attempt (its text is the error)."""

    def __init__(self, fn: Callable[[str, date], int | None]) -> None:
        self.fn = fn

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        t0 = time.perf_counter()
        try:
            rows = self.fn(processor, day)
        except Exception as exc:
            return RunOutcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
        return RunOutcome(True, rows=rows, seconds=time.perf_counter() - t0)
