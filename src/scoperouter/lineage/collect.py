"""Gather each processor's reads from its code: SQL files and SQL literals in Python files.

Invariant: a processor's code is the files its globs match (``lineage: {code: [...]}`` in
routes.yaml, or the command line), resolved against one root directory; a glob that matches
nothing and a file that cannot be read or parsed are unresolved entries, never skipped
silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from scoperouter.lineage.pysrc import Literal, sql_literals
from scoperouter.lineage.reads import Origin, Reads, Unresolved
from scoperouter.lineage.sql import Schema, sql_reads


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)


def expand(globs: Iterable[str], root: Path) -> tuple[list[Path], list[str]]:
    """Files matched by ``globs`` under ``root`` (sorted, unique) and the globs matching none."""
    files: set[Path] = set()
    empty: list[str] = []
    for g in globs:
        p = Path(g)
        matched = [p] if p.is_absolute() and p.is_file() else sorted(root.glob(g))
        matched = [m for m in matched if m.is_file()]
        if not matched:
            empty.append(g)
        files.update(matched)
    return sorted(files), empty


def file_reads(path: Path, root: Path, schema: Schema | None = None) -> Reads:
    """The reads of one file: a .py file's SQL literals, else the whole file as SQL."""
    shown = _display(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reads = Reads()
        reads.unresolved.append(Unresolved(Origin(shown), f"cannot read: {exc}"))
        return reads
    if path.suffix != ".py":
        return sql_reads(text, Origin(shown, 1), schema)
    reads = Reads()
    try:
        literals = sql_literals(text)
    except SyntaxError as exc:
        reads.unresolved.append(Unresolved(Origin(shown, exc.lineno or 0), "not Python"))
        return reads
    for lit in literals:
        where = Origin(shown, lit.line)
        got = _literal_reads(lit, where, schema)
        if not got.parsed and lit.alone is not None:
            got = _literal_reads(lit.alone, where, schema)
            lines = ", ".join(map(str, lit.appended))
            got.unresolved.append(
                Unresolved(
                    where,
                    f"SQL appended with += (line {lines}) does not parse with the query: "
                    "read without it",
                )
            )
        reads.merge(got)
    return reads


def _literal_reads(lit: Literal, where: Origin, schema: Schema | None) -> Reads:
    """The reads of one SQL literal (its clause holes left empty when it does not parse
    otherwise), or of a fragment (unresolved)."""
    reads = Reads()
    if lit.fragment:
        shown_text = " ".join(lit.text.split())[:50]
        reads.unresolved.append(
            Unresolved(
                where,
                f"SQL fragment ({shown_text}...) assembled at run time: the tables and "
                "columns it reads are unknown",
            )
        )
        reads.parsed = False
        return reads
    got = sql_reads(lit.text, where, schema)
    if not got.parsed and lit.clause_text and lit.clause_text != lit.text:
        retry = sql_reads(lit.clause_text, where, schema)
        if retry.parsed:
            dropped = ", ".join(
                "{" + (h if len(h) <= 40 else h[:37] + "...") + "}" for h in lit.holes
            )
            retry.unresolved.append(
                Unresolved(where, f"dynamic SQL: read with the clause holes left empty ({dropped})")
            )
            got = retry
    return got


def code_reads(
    globs_by_processor: Mapping[str, tuple[str, ...]], root: Path, schema: Schema | None = None
) -> dict[str, Reads]:
    """Per processor with code globs: the union of its files' reads."""
    cache: dict[Path, Reads] = {}
    out: dict[str, Reads] = {}
    for proc, globs in globs_by_processor.items():
        files, empty = expand(globs, root)
        reads = Reads()
        for g in empty:
            reads.unresolved.append(Unresolved(Origin(g), "glob matches no file"))
        for f in files:
            if f not in cache:
                cache[f] = file_reads(f, root, schema)
            reads.merge(cache[f])
        out[proc] = reads
    return out
