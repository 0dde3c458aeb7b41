"""Issue 13, acceptance 6: apply each hand-made mutant to a copy of src/, run the test
that must now catch it, and check that test passes on the real tree.

    python tests/mutants_issue13.py [NAME-SUBSTRING ...]

Prints KILLED or SURVIVED per mutant; exits 1 if any survived.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WT = str(Path(__file__).resolve().parents[1])
R = "scoperouter/router/"
RT = "scoperouter/runtime/"
M = [
    (
        "restore forgets last_at",
        R + "window_state.py",
        'last_at=float(item["last_at"]),',
        "last_at=opened,",
        "tests/planner/test_engine.py::test_restore_keeps_last_decision_time_and_priority",
    ),
    (
        "restore forgets critical",
        R + "window_state.py",
        'priority="critical" if item.get("priority") == "critical" else "normal",',
        'priority="normal",',
        "tests/planner/test_engine.py::test_restore_keeps_last_decision_time_and_priority",
    ),
    (
        "skip decisions enter windows",
        R + "window_state.py",
        '    if decision.action != "run":\n        return "skip", None\n',
        "",
        "tests/planner/test_engine.py::test_skip_decisions_never_enter_a_window",
    ),
    (
        "entity type never set (merge)",
        R + "window_state.py",
        "        ids = union\n        if etype:\n            wtype = etype\n",
        "        ids = union\n",
        "tests/planner/test_engine.py::test_window_entity_type_comes_from_the_decision",
    ),
    (
        "entity type never set (restore)",
        R + "window_state.py",
        'entity_type=str(item["entity_type"]) if item.get("entity_type") else params.entity_type,',
        "entity_type=params.entity_type,",
        "tests/planner/test_engine.py::test_window_json_round_trip",
    ),
    (
        "intermediate empty hop dropped",
        R + "entity_mapping.py",
        "        for x in frontier:\n            t = targets(rel, on, x)\n            if not t:\n                return EMPTY_RESULT\n            nxt.update(t)",
        "        for x in frontier:\n            t = targets(rel, on, x)\n            if not t:\n                continue\n            nxt.update(t)",
        "tests/planner/test_planner_teeth.py::test_intermediate_hop_reaching_nothing_forces_date_scope",
    ),
    (
        "memo ignores entity key",
        R + "planner.py",
        "mk = (key, path)",
        'mk = ("", path)',
        "tests/planner/test_planner_teeth.py::test_memo_is_per_event_key",
    ),
    (
        "ids truncated despite games lookback",
        R + "planner.py",
        "limit = None if inp.via is not None else inp.max_entities",
        "limit = inp.max_entities",
        "tests/planner/test_planner_teeth.py::test_games_lookback_keeps_every_mapped_id_past_the_threshold",
    ),
    (
        "synchronous setting ignored",
        RT + "store.py",
        'self._db.execute(f"PRAGMA synchronous={sync.upper()}")',
        "pass",
        "tests/runtime/test_store_teeth.py::test_synchronous_setting_is_applied",
    ),
    (
        # issue 18 made dead rows permanent (kept until redriven or discarded): the mutant
        # prunes them at the done retention
        "dead pruned at done retention",
        RT + "housekeeping.py",
        "store.prune_triggers(now - o.done_retention_s, limit=limit)  # dead rows: kept",
        "store.prune_triggers(now - o.done_retention_s, now - o.done_retention_s, limit)",
        "tests/runtime/test_store_teeth.py::test_dead_triggers_outlive_the_done_retention",
    ),
    (
        "attempts overwrite finished rows",
        RT + "store.py",
        "UPDATE triggers SET attempts = ? WHERE id = ? AND status = 'pending'",
        "UPDATE triggers SET attempts = ? WHERE id = ?",
        "tests/runtime/test_store_teeth.py::test_attempts_never_overwrite_a_finished_row",
    ),
    (
        "re-seen id keeps first time",
        RT + "store.py",
        "INSERT OR REPLACE INTO seen",
        "INSERT OR IGNORE INTO seen",
        "tests/runtime/test_store_teeth.py::test_a_reseen_event_id_takes_the_later_time",
    ),
    # serve's default since issue 13: the per-window state store (state/sqlite.py) under
    # SharedRouter; the same guarantees must have teeth there
    (
        "daemon ignores sync (default store)",
        RT + "daemon.py",
        "            state_dir / EMBEDDED_STATE,\n            options,\n            sync,\n",
        '            state_dir / EMBEDDED_STATE,\n            options,\n            "normal",\n',
        "tests/runtime/test_default_state.py::test_default_store_takes_the_sync_setting",
    ),
    (
        "dead pruned at done retention (default store)",
        RT + "shared_router.py",
        "dead_s=None,  # dead triggers",
        "dead_s=o.done_retention_s,  # dead triggers",
        "tests/runtime/test_outage_state.py::test_housekeeping_keeps_dead_triggers",
    ),
    (
        "parked rows stay leased (default store)",
        RT + "dispatcher.py",
        "                self.marks.append(Release(row_id))\n",
        "",
        "tests/runtime/test_outage_state.py::test_outage_parks_the_backlog_in_the_store_and_redrives_it",
    ),
    (
        "table row changed (union past max)",
        R + "window_rules.py",
        """("entities", "entities_past_max"): Transition(
        "date", "to_threshold",""",
        """("entities", "entities_past_max"): Transition(
        "entities", "union",""",
        "tests/planner/test_engine.py",
    ),
]


def main(only: list[str]) -> int:
    """Apply each mutant named by ``only`` (all when empty); 1 if any survived."""
    MUT = tempfile.mkdtemp(prefix="scoperouter-mutants-")
    survived = 0
    for name, f, old, new, test in M:
        if only and not any(o in name for o in only):
            continue
        shutil.rmtree(MUT, ignore_errors=True)
        shutil.copytree(WT + "/src", MUT + "/src")
        p = f"{MUT}/src/{f}"
        s = Path(p).read_text()
        assert s.count(old) == 1, (name, s.count(old))
        Path(p).write_text(s.replace(old, new))
        env = {**os.environ, "PYTHONPATH": MUT + "/src"}
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-x", test],
            cwd=WT,
            env=env,
            capture_output=True,
            text=True,
        )
        last = [ln for ln in r.stdout.splitlines() if ln.strip()][-1]
        survived += r.returncode == 0
        print(
            f"{'KILLED' if r.returncode else 'SURVIVED'}  {name}: {test.split('::')[-1]}  [{last}]",
            flush=True,
        )
        # and the test passes on the unmutated tree
        r0 = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-x", test],
            cwd=WT,
            env={**os.environ, "PYTHONPATH": WT + "/src"},
            capture_output=True,
            text=True,
        )
        assert r0.returncode == 0, r0.stdout[-2000:]
    shutil.rmtree(MUT, ignore_errors=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
