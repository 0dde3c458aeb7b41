"""Event and trigger models, and normalisation of legacy event shapes."""

from scoperouter.messages.models import Event, Priority, Scope, Status, Trigger

__all__ = ["Event", "Priority", "Scope", "Status", "Trigger"]
