"""``python -m scoperouter``: the same command line as the ``scoperouter`` script.

Invariant: nothing here but the hand-off to :func:`scoperouter.cli.main`; its exit code is
the process's.
"""

from __future__ import annotations

import sys

from scoperouter.cli import main

if __name__ == "__main__":
    sys.exit(main())
