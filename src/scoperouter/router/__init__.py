"""The router core: planner (event -> decisions) and windows (decisions -> triggers)."""

from scoperouter.router.decisions import REASON_ORDER, SKIP_REASONS, Decision, Reason
from scoperouter.router.planner import Planner, plan, planner_for
from scoperouter.router.windows import WindowBook, trigger_id

__all__ = [
    "REASON_ORDER",
    "SKIP_REASONS",
    "Decision",
    "Planner",
    "Reason",
    "WindowBook",
    "plan",
    "planner_for",
    "trigger_id",
]
