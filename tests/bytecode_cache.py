"""The test run caches compiled bytecode even where the environment turns that off
(``PYTHONDONTWRITEBYTECODE``, set by many container images and on this project's
machines): without it every xdist worker compiled and assertion-rewrote every test module
again on every run (collection 27 s a worker against 14 s), and every process a test starts
(the CLI, ``serve``, spawned pools) compiled the ``scoperouter`` modules it imports again.

Invariant: imported by ``tests/conftest.py`` before anything else, it changes nothing where
caching is on; where it is off, it turns it on for this process and, through the
environment, every process it starts afterwards (the xdist workers among them). The caches
go where Python puts them: ``__pycache__`` next to each source (ignored by git), or under
``PYTHONPYCACHEPREFIX`` where the environment names one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping


def cache_bytecode(environ: MutableMapping[str, str]) -> bool:
    """Turn bytecode caching on in this interpreter and ``environ`` when it is off; whether
    it was off."""
    if not sys.dont_write_bytecode:
        return False
    sys.dont_write_bytecode = False
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return True


cache_bytecode(os.environ)
