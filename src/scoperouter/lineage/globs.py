"""Which files a processor's ``lineage.code`` globs name, and which tables its
``lineage.ignore_tables`` entries cover (shared by ``lineage`` and ``validate``; imports
nothing heavy).

Invariant: a glob is relative to one root directory unless it is absolute (then it is
matched from its anchor); only files count -- a glob matching nothing but directories
matches no file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def matches(glob: str, root: Path) -> list[Path]:
    """The files ``glob`` matches under ``root`` (an absolute glob from its anchor), sorted."""
    p = Path(glob)
    if p.is_absolute():
        rel = str(p.relative_to(p.anchor))
        found = [p] if not rel or rel == "." else list(Path(p.anchor).glob(rel))
    else:
        found = list(root.glob(glob)) if glob not in ("", ".") else []
    return sorted(m for m in found if m.is_file())


def expand(globs: Iterable[str], root: Path) -> tuple[list[Path], list[str]]:
    """Files matched by ``globs`` under ``root`` (sorted, unique) and the globs matching none."""
    files: set[Path] = set()
    empty: list[str] = []
    for g in globs:
        matched = matches(g, root)
        if not matched:
            empty.append(g)
        files.update(matched)
    return sorted(files), empty


def ignored(table: str, entries: Iterable[str]) -> str | None:
    """The ``lineage.ignore_tables`` entry covering ``table``: the same name, or an entry
    ending in ``*`` whose prefix starts it (``ds.events_*`` covers ``ds.events_2024`` and
    the wildcard read ``ds.events_*`` itself); None when none does."""
    for e in entries:
        if table == e or (e.endswith("*") and table.startswith(e[:-1])):
            return e
    return None
