"""scoperouter: declarative, entity-scoped routing for multi-phase data pipelines."""

__version__ = "0.1.0"
