"""Faults for the demo's simulation: a share of processor runs fail, a share never report
back, and completions arrive late and out of order.

Invariant: every fault is a deterministic function of ``(seed, trigger id, attempt)``, so a
run is reproducible and a re-dispatch of a trigger draws its own fate. A failed run writes
nothing and reports ``failed``; a lost run writes its output but none of its messages
arrive (its completion, with the change event, is lost); every message is delayed by a
draw in ``[0, late_max_s]``, so completions overtake each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Fate = Literal["ok", "fail", "lost"]


def _unit(*parts: object) -> float:
    h = hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2**64


@dataclass(frozen=True)
class Faults:
    fail_share: float = 0.0
    lost_share: float = 0.0
    late_max_s: float = 0.0
    seed: int = 0

    @property
    def any(self) -> bool:
        return self.fail_share > 0 or self.lost_share > 0 or self.late_max_s > 0

    def fate(self, trigger_id: str, attempt: int) -> Fate:
        u = _unit(self.seed, "fate", trigger_id, attempt)
        if u < self.fail_share:
            return "fail"
        if u < self.fail_share + self.lost_share:
            return "lost"
        return "ok"

    def delay(self, trigger_id: str, attempt: int, i: int = 0) -> float:
        if self.late_max_s <= 0:
            return 0.0
        return self.late_max_s * _unit(self.seed, "late", trigger_id, attempt, i)

    def to_json(self) -> dict[str, float]:
        return {
            "fail_share": self.fail_share,
            "lost_share": self.lost_share,
            "late_max_s": self.late_max_s,
        }


NO_FAULTS = Faults()
