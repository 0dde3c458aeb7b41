"""The router daemon (``scoperouter serve``): sources, durable store, windows, sinks."""

from scoperouter.runtime.router import Inbound, Outcome, Router, RouterOptions

__all__ = ["Inbound", "Outcome", "Router", "RouterOptions"]
