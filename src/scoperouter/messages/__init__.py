"""Event and trigger models, and normalisation of legacy event shapes."""

from scoperouter.messages.models import Event, Priority, Scope, Status, Trigger
from scoperouter.messages.normalize import normalize_event, parse_event_bytes

__all__ = [
    "Event",
    "Priority",
    "Scope",
    "Status",
    "Trigger",
    "normalize_event",
    "parse_event_bytes",
]
