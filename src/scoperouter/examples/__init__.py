"""Reference pipelines shipped with scoperouter (``scoperouter demo`` runs :mod:`.nba`)."""
