"""The body of ``POST /backfills``, read into a backfill request.

Invariant: a body is a :class:`~scoperouter.backfill.plan.Request` (and its
``max_attempts``) only when every key is known and every value means what it says; anything
else raises ``ValueError``, which the API answers 400 ``invalid_backfill`` -- a misspelt
selection never selects every processor, an unknown completion never means ``ack``, and a
date is YYYY-MM-DD only (as an event's game_date), never an ISO week.
"""

from __future__ import annotations

from datetime import date

from scoperouter.backfill.plan import Request
from scoperouter.messages.event_fields import DATE_RE

_KEYS = frozenset(
    {"start", "end", "processors", "from", "phases", "max_attempts", "completion", "rerun"}
)


def request_of(body: object) -> tuple[Request, int | None]:
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    # a misspelt key ("processor", "phase") was ignored: the backfill ran every processor
    unknown = sorted(str(k) for k in body if k not in _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    phases = body.get("phases")
    ph: tuple[int, int] | None = None
    if phases is not None:
        lo, dash, hi = str(phases).partition("-")
        if dash and not hi:  # "3-" read as phase 3 alone
            raise ValueError(f"phases {phases!r}: a phase (3) or a range (3-5)")
        ph = (int(lo), int(hi or lo))
    # only a list (or null: none given) selects: an empty {} / "" / false / 0 was read as
    # no selection, and the backfill ran every processor
    procs = body.get("processors")
    frm = body.get("from")
    procs = [] if procs is None else procs
    frm = [] if frm is None else frm
    if not isinstance(procs, list) or not isinstance(frm, list):
        raise ValueError("processors and from are lists of processor names")
    ma = body.get("max_attempts")
    # a float was truncated (2.5 -> 2 attempts): only an integer (or its digits) is one
    if ma is not None and (isinstance(ma, bool | float) or int(ma) < 1):
        raise ValueError("max_attempts must be a positive integer")
    completion = body.get("completion", "ack")
    if completion not in ("ack", "event"):
        # anything else silently meant "ack": a delivered trigger counted as a finished run,
        # so downstream runs started before their upstream had finished
        raise ValueError(f"completion must be 'ack' or 'event', not {completion!r}"[:200])
    return (
        Request(
            _date(body, "start"),
            _date(body, "end"),
            tuple(str(p) for p in procs),
            tuple(str(p) for p in frm),
            ph,
        ),
        int(ma) if ma is not None else None,
    )


def _date(body: dict[object, object], key: str) -> date:
    """``body[key]``, a YYYY-MM-DD string (as an event's game_date): ``date.fromisoformat``
    alone also took ``2025-W47`` (a Monday) and ``20251117``."""
    value = body[key]
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise ValueError(f"{key} must be a date YYYY-MM-DD, not {value!r}"[:200])
    return date.fromisoformat(value)


def rerun_of(body: object) -> bool:
    """The body's ``rerun`` (default false): only a JSON boolean is one -- ``"false"`` is
    not false, and a rerun runs a whole backfill again."""
    rerun = body.get("rerun", False) if isinstance(body, dict) else False
    if not isinstance(rerun, bool):
        raise ValueError(f"rerun must be true or false, not {rerun!r}"[:200])
    return rerun
