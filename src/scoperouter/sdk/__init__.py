"""The processor SDK: take an entity scope, do scoped work, publish what changed.

* :func:`parse_trigger` -> :class:`Scope` (push envelope, pulled message or dict; legacy
  date-only messages parse as full date).
* :func:`entity_filter` / :func:`qmark_filter` -> parameterised SQL for the scope
  (``scoperouter.sdk.bigquery``; BigQuery needs the ``bigquery`` extra).
* :class:`CompletionPublisher` -> canonical completion event on Pub/Sub, with a date-level
  fallback above a size/count limit.
* :class:`ChangeDetector` / :func:`completion_event` -> sender-side change detection:
  name only the entities and fields a run really changed (``scoperouter.sdk.change_detection``;
  :func:`diff_rows` and :class:`EntityChanges` for processors that diff rows themselves).
* :func:`referenced_tables` -> the tables a run's BigQuery jobs read (less those its jobs
  wrote: staging tables), for the completion event (the router counts reads routes.yaml
  does not declare: drift).
* :func:`compare_sources` -> interop with ``source_{prefix}_*`` dependency columns.
"""

from __future__ import annotations

from scoperouter.sdk.bigquery import (
    check_identifier,
    entity_filter,
    filter_sql,
    qmark_filter,
    referenced_tables,
)
from scoperouter.sdk.change_detection import (
    ChangeDetector,
    EntityChanges,
    completion_event,
    diff_rows,
)
from scoperouter.sdk.dependency import (
    SourceState,
    UpstreamDiff,
    compare_sources,
    entities_with_upstream_change,
    source_states,
)
from scoperouter.sdk.publisher import (
    CompletionPublisher,
    PublishLimits,
    PublishResult,
    apply_limits,
    build_completion_event,
    encode_event,
)
from scoperouter.sdk.scope import Scope, TriggerError, parse_trigger

__all__ = [
    "ChangeDetector",
    "CompletionPublisher",
    "EntityChanges",
    "PublishLimits",
    "PublishResult",
    "Scope",
    "SourceState",
    "TriggerError",
    "UpstreamDiff",
    "apply_limits",
    "build_completion_event",
    "check_identifier",
    "compare_sources",
    "completion_event",
    "diff_rows",
    "encode_event",
    "entities_with_upstream_change",
    "entity_filter",
    "filter_sql",
    "parse_trigger",
    "qmark_filter",
    "referenced_tables",
    "source_states",
]
