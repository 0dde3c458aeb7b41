"""Tell a pipeline's *trigger* messages apart from its *completion* events.

Invariant: a message that asks a service to run (an orchestrator's trigger, an auto-retry
request, a date-range job body) is never mistaken for a completion and never accepted to
route nothing in silence: :func:`trigger_problem` names it, and the normaliser rejects it
with reason ``not_a_completion`` (HTTP 400 / dead letter), saying which topic or source to
read instead. A trigger that does name the completed table (the Phase 3->4 orchestrator's
per-table message) is routable and is left to the normaliser: :func:`is_routable_trigger`
only labels its shape.

The markers are the field names the production pipeline's senders use (cited in
``tests/messages/production_corpus.py``): ``triggered_by`` (the orchestrators and the
auto-retry function), ``action`` (auto-retry's Phase 5 and fallback bodies), ``export_types``
(the Phase 5->6 export trigger), ``processors`` (``/process-date-range`` job bodies) and
``analysis_date`` (Phase 4 ``/process-date`` bodies).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# fields that name the source of a completion (SPEC section 3, read in this order)
SOURCE_KEYS: tuple[str, ...] = ("source", "source_table", "analytics_table", "output_table")
# fields only a trigger (a request to run) carries
TRIGGER_MARKERS: tuple[str, ...] = (
    "triggered_by",
    "action",
    "export_types",
    "processors",
    "analysis_date",
)
AUTO_RETRY = "auto_retry"
_MAX = 60


def _show(v: object) -> str:
    text = repr(v)
    return text if len(text) <= _MAX else text[: _MAX - 3] + "..."


def trigger_problem(raw: Mapping[str, Any]) -> str | None:
    """Why ``raw`` is a trigger and not a completion, or None when it may be a completion.

    * An auto-retry request (``triggered_by: auto_retry``) names the *processor* to re-run
      in ``source_table`` (a class name), not a table that changed.
    * A message with no source field at all but a trigger marker is a request to run.
    """
    if raw.get("triggered_by") == AUTO_RETRY:
        what = raw.get("source_table") or raw.get("processor_name")
        return (
            f"an auto-retry request (triggered_by: auto_retry) to re-run {_show(what)}, not a "
            "completion: send it to the processor's service; scoperouter retries its own "
            "dispatches"
        )
    if any(raw.get(k) is not None for k in SOURCE_KEYS):
        return None
    markers = [k for k in TRIGGER_MARKERS if raw.get(k) is not None]
    if not markers:
        return None
    shown = ", ".join(f"{k}: {_show(raw[k])}" for k in markers[:2])
    return (
        f"a trigger ({shown}), not a completion: it names no completed source; subscribe "
        "scoperouter to the completion topic its sender reads instead"
    )


def is_routable_trigger(raw: Mapping[str, Any]) -> bool:
    """An orchestrator's trigger that names the completed table (routed like a completion)."""
    by = raw.get("triggered_by")
    return (
        isinstance(by, str)
        and by != AUTO_RETRY
        and any(raw.get(k) is not None for k in SOURCE_KEYS)
    )
