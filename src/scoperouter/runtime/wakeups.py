"""How a helper thread of the event loop is scheduled when the loop wakes it.

Invariant: only the scheduling policy of the calling thread changes -- nothing it runs, in
what order, or whether it may run, only whether its wake-up preempts the running thread.

The event loop hands each outbox flush to the outbox's sync thread with a queue ``put``,
holding the GIL. A woken thread of the default policy (``SCHED_OTHER``) usually preempts
its waker on the waker's CPU, runs only until it asks for the GIL -- which the preempted
loop still holds -- and blocks again, while the loop waits for a CPU with the GIL in hand
(py-spy ``--gil`` at saturation: ~14% of the loop's GIL-holding samples on that ``put``
line, ~5% with this). ``SCHED_BATCH`` (Linux) keeps the thread's fair share without
wake-up preemption: it runs at once on an idle CPU (no added latency when the machine is
idle), else at the next scheduling point. Not for the state thread: it is on the ingest's
critical path, and delaying it cut saturation throughput (measured under load, 2 cores).
"""

from __future__ import annotations

import contextlib
import os


def no_wakeup_preemption() -> bool:
    """The calling thread's policy becomes ``SCHED_BATCH`` (priority 0, which needs no
    privilege); False where there is no such policy or it is refused (nothing changed)."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return False
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, policy, os.sched_param(0))  # 0: this thread (Linux)
        return True
    return False
