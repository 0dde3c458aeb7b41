"""The reference NBA pipeline: a synthetic season, reference processors for every
processor in ``routes.yaml``, a game-day update stream and the date-level vs routed
harness behind ``scoperouter demo``."""
