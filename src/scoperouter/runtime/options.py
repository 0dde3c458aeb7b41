"""The router's tuning knobs (:class:`RouterOptions`); every one is reachable from
``routes.yaml`` ``server:`` and the CLI through :mod:`scoperouter.runtime.config`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass
class RouterOptions:
    as_of: date | None = None  # None = today (UTC) at each batch
    dedup_horizon_s: float = 86400.0
    max_batch: int = 512
    # the ingest worker waits this long after a batch's first event for more to join it
    # (group commit: one fsync and one state-thread job for all of them); 0 = no wait
    ingest_linger_s: float = 0.002
    # serve --shadow: every processor in shadow mode, whatever routes.yaml says
    shadow: bool = False
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    # a target failing this many attempts in a row opens its circuit: its backlog waits in
    # the store; a probe after base..cap (doubling) closes it again and redrives the backlog
    breaker_threshold: int = 5
    # the dispatcher pages waiting rows at least this often (and sweeps rows past their
    # retry horizon every 60 intervals)
    pump_interval_s: float = 1.0
    compact_every: int = 20000  # journal rows before a snapshot
    compact_min_interval_s: float = 5.0
    mark_flush_interval_s: float = 0.05
    housekeeping_interval_s: float = 60.0
    done_retention_s: float = 7 * 86400.0
    # dead trigger rows and dead letters (inspect them before they go; a dead-letter topic,
    # when configured, keeps its own copy)
    dead_letter_retention_s: float = 7 * 86400.0
    # a failing store (disk full, read-only, I/O errors): retries back off exponentially
    # from base to cap; repeated failures are logged at most once per log interval
    store_backoff_base_s: float = 0.05
    store_backoff_cap_s: float = 5.0
    store_log_interval_s: float = 30.0
