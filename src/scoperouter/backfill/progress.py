"""Progress of a running backfill, from the runner's events: ``--json`` (one event per
line), a live status line on a terminal (runs done / failed / waiting per phase, rate,
ETA), or plain lines when not a terminal (every failure, and a summary each 5 %).

Invariant: presentation only -- it reads events, never the scheduler or the store.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from scoperouter.backfill.plan import BackfillPlan


class Progress:
    def __init__(
        self,
        plan: BackfillPlan,
        *,
        mode: str = "auto",  # auto | json | tty | plain
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out or sys.stdout
        if mode == "auto":
            mode = "tty" if self.out.isatty() else "plain"
        self.mode = mode
        self.clock = clock
        self.total: Counter[int] = Counter(r.phase for r in plan.runs)
        self.phase_of = {r.key: r.phase for r in plan.runs}
        self.done: Counter[int] = Counter()
        self.failed: Counter[int] = Counter()
        self.t0 = clock()
        self.finished_here = 0
        self.already = 0
        self._last_pct = -1

    def __call__(self, ev: dict[str, Any]) -> None:
        kind = ev["event"]
        if kind == "start":  # runs a previous invocation finished
            self.already = int(ev["counts"].get("done", 0))
            for ph, n in ev.get("done_by_phase", {}).items():
                self.done[int(ph)] += int(n)
        if self.mode == "json":
            print(json.dumps(ev, default=str), file=self.out, flush=True)
        ph = self.phase_of.get(str(ev.get("run")), 0)
        if kind == "done":
            self.done[ph] += 1
            self.finished_here += 1
        elif kind in ("failed", "blocked"):
            self.failed[ph] += 1
        if self.mode == "json":
            return
        if kind in ("failed", "retrying") and self.mode == "plain":
            print(f"{kind}: {ev['run']} attempt {ev['attempt']}: {ev.get('error')}", file=self.out)
        if kind == "start":
            note = f" (resumed: {self.already} runs already done)" if ev.get("resumed") else ""
            print(f"backfill {ev['backfill_id']}: {sum(self.total.values())} runs{note}",
                  file=self.out, flush=True)  # fmt: skip
            return
        if kind == "end":
            if self.mode == "tty":
                print(file=self.out)
            c = ev["counts"]
            sk = ev.get("skipped") or {}
            # runs done without work (shadow: sent nothing) are said so, not plain "done"
            none = "".join(f", {n} of them {why} (sent nothing)" for why, n in sorted(sk.items()))
            print(
                f"backfill {ev['backfill_id']} {ev['status']}: {c['done']} done{none}, "
                f"{c['failed']} failed, {c['blocked']} blocked; {ev['rows']} entity rows, "
                f"{ev['seconds']:.1f} s of runs",
                file=self.out,
                flush=True,
            )
            return
        if kind not in ("done", "failed", "blocked"):
            return
        line = self.line()
        if self.mode == "tty":
            print("\r" + line, end="", file=self.out, flush=True)
            return
        total = sum(self.total.values())
        pct = int(100 * sum(self.done.values()) / max(1, total)) // 5 * 5
        if pct != self._last_pct:
            self._last_pct = pct
            print(line, file=self.out, flush=True)

    def line(self) -> str:
        total = sum(self.total.values())
        done = sum(self.done.values())
        failed = sum(self.failed.values())
        elapsed = max(1e-9, self.clock() - self.t0)
        rate = self.finished_here / elapsed
        left = total - done - failed
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        phases = " ".join(
            f"P{p} {self.done[p]}/{self.total[p]}" + (f" ({self.failed[p]} failed)" if self.failed[p] else "")
            for p in sorted(self.total)
        )  # fmt: skip
        return f"{done}/{total} done, {failed} failed, {left} waiting | {phases} | {rate:.1f} runs/s, ETA {eta}"
