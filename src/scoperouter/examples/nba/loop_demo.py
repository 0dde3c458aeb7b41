"""The closed-loop figures of the demo (issue 14): one game day with faults, routed with
the ledger off, with the ledger on, and with the ledger and the barrier on.

Invariant: every mode starts from the same overnight warehouse and the same updates; the
faults are a deterministic function of the seed and the trigger, so the comparison is
reproducible. The date-level run (no faults) is the reference warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoperouter.examples.nba.faults import Faults
from scoperouter.examples.nba.harness import GameDay, ModeStats, run_routed
from scoperouter.examples.nba.processors import OUTPUT_SOURCES
from scoperouter.examples.nba.routers import PlannedRouter
from scoperouter.examples.nba.single import SingleUpdate, single_update
from scoperouter.examples.nba.warehouse import Warehouse, diff_dumps
from scoperouter.processor_registry.model_loop import BarrierSpec
from scoperouter.router.loop_params import LoopOverrides


def demo_faults(seed: int) -> Faults:
    """Acceptance 1: 10% of runs fail, 5% never report back, messages up to 60 s late."""
    return Faults(fail_share=0.10, lost_share=0.05, late_max_s=60.0, seed=seed)


# The router's settings in the demo: 3 re-runs, 10 min to report, barrier waits up to 2 h
# (production's longest tier, orchestration/cloud_functions/phase4_to_phase5/main.py:101).
LEDGER = LoopOverrides(run_retries=3, completion_timeout_s=600.0, no_barrier=True)
BARRIER = LoopOverrides(
    run_retries=3, completion_timeout_s=600.0, barrier=BarrierSpec(timeout="2h")
)


@dataclass
class LoopMode:
    name: str
    stats: ModeStats
    missed_rows: int  # output rows that differ from the date-level warehouse
    dead_letters: int
    open_triggers: int
    timed_out: int
    router: PlannedRouter = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.stats.to_json(),
            **self.stats.loop_json(),
            "missed_rows": self.missed_rows,
            "dead_letters": self.dead_letters,
            "open_triggers": self.open_triggers,
            "timed_out": self.timed_out,
        }


def run_mode(
    day: GameDay, reference: Warehouse, name: str, *, faults: Faults, loop: LoopOverrides | bool
) -> LoopMode:
    keep: list[PlannedRouter] = []
    stats, wh = run_routed(day, loop=loop, faults=faults, keep=keep)
    diff = diff_dumps(reference.dump(OUTPUT_SOURCES), wh.dump(OUTPUT_SOURCES))
    router = keep[0]
    lp = router.engine.loop
    dead = len(lp.ledger.dead_letters()) if lp is not None else 0
    opened = lp.ledger.open_count if lp is not None else 0
    timed = (
        sum(
            1
            for e in lp.ledger.entries()
            if e.timeouts or "timed_out" in {a.what for a in e.history}
        )
        if lp is not None
        else 0
    )
    return LoopMode(name, stats, sum(len(v) for v in diff.values()), dead, opened, timed, router)


@dataclass
class LoopComparison:
    seed: int
    faults: Faults
    modes: dict[str, LoopMode]
    single: dict[str, SingleUpdate] = field(default_factory=dict)  # no faults: today, barrier

    def to_json(self) -> dict[str, Any]:
        return {
            "faults": self.faults.to_json(),
            **{name: m.to_json() for name, m in self.modes.items()},
            "single_update": {
                name: {"routed_s": round(s.routed_s, 1), "routed_all_s": round(s.routed_all_s, 1)}
                for name, s in self.single.items()
            },
        }

    def text(self) -> list[str]:
        """The closed loop's lines of the demo's text summary."""
        f, m = self.faults, self.modes
        head = f"{'':34s}{'runs':>6s}{'rows':>8s}{'failed':>8s}{'lost':>6s}{'re-runs':>9s}{'half-upd':>10s}{'missed':>8s}{'dead':>6s}{'quiet after':>13s}"
        lines = [
            f"closed loop: {f.fail_share:.0%} of runs fail, {f.lost_share:.0%} never report back, "
            f"messages up to {f.late_max_s:g} s late (out of order)",
            head,
        ]
        label = {
            "no_ledger": "faults, ledger off (today)",
            "ledger": "faults, ledger on",
            "ledger_barrier": "faults, ledger + barrier",
            "clean": "no faults, ledger on",
            "clean_barrier": "no faults, ledger + barrier",
        }
        for name, mode in m.items():
            s = mode.stats
            # without the ledger the router does not know which triggers are still open
            half = "n/a" if name == "no_ledger" else str(s.half_updated_runs)
            lines.append(
                f"{label[name]:34s}{s.processor_runs:6d}{s.entity_rows:8,d}{s.failed_runs:8d}"
                f"{s.lost_runs:6d}{s.reruns:9d}{half:>10s}{mode.missed_rows:8d}"
                f"{mode.dead_letters:6d}{s.quiescence_s:12.0f}s"
            )
        for name, su in self.single.items():
            lines.append(
                f"one critical injury update, {label[name]}: reaches phases 3-6 in "
                f"{su.routed_s:.1f} s, every consumer done in {su.routed_all_s:.1f} s"
            )
        lines.append(
            "half-upd: runs sent while an upstream had open work on their date; missed: output "
            "rows unlike date level; quiet after: from the last update until nothing is left"
        )
        return lines


def compare_loop(
    day: GameDay, reference: Warehouse, faults: Faults | None = None
) -> LoopComparison:
    """The day with faults: ledger off, ledger on, ledger + barrier; and without faults,
    ledger on with and without the barrier (today's figures next to the barrier's)."""
    f = faults or demo_faults(day.season.seed)
    none = Faults()
    modes = {
        "no_ledger": run_mode(day, reference, "no_ledger", faults=f, loop=False),
        "ledger": run_mode(day, reference, "ledger", faults=f, loop=LEDGER),
        "ledger_barrier": run_mode(day, reference, "ledger_barrier", faults=f, loop=BARRIER),
        "clean": run_mode(day, reference, "clean", faults=none, loop=LEDGER),
        "clean_barrier": run_mode(day, reference, "clean_barrier", faults=none, loop=BARRIER),
    }
    single = {
        "clean": single_update(day, loop=LEDGER),
        "clean_barrier": single_update(day, loop=BARRIER),
    }
    return LoopComparison(day.season.seed, f, modes, single)
