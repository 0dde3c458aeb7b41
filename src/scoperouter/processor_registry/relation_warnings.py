"""Warnings about loaded relation data (``validate`` prints them, ``serve`` logs them).

:func:`case_clashes` (``relation_id_case``): two ids of one entity type that differ only by
case load as two entities. :func:`mixed_dates` (``relation_mixed_dates``): a file with dated
rows and undated ones, whose undated rows never make a date known (a date outside the span of
its dated rows is unknown: :func:`~scoperouter.processor_registry.relations.unknown_on`).
:func:`missing_days` (``relation_missing_days``): an ``every_day`` relation's file with
dates inside its span that have no dated row (holes: unknown, the full date).
:func:`isolated_last_date` (``relation_isolated_date``): a file whose latest date stands far
after the rest (a typo'd year): the span it stretches makes every date between loaded,
with no row there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, timedelta

from scoperouter.errors import ConfigIssue

Row = tuple[date | None, str, str]
RelationFile = tuple[str, tuple[str, str], Sequence[Row], Sequence[int]]


def case_clashes(
    files: Iterable[RelationFile],
) -> tuple[ConfigIssue, ...]:
    """A ``relation_id_case`` warning for each id of an entity type that another id of that
    type equals but for case (``LAL``, then ``lal``): ids match exactly, so they load as two
    entities and an event naming one never reaches the other's rows. ``files``: (file,
    (from type, to type), rows, the line of each row), in load order; the warning is at
    the first line of each later spelling and names the first one's file:line."""
    first: dict[tuple[str, str], tuple[str, str, int]] = {}  # (type, folded) -> spelling
    seen: set[tuple[str, str]] = set()  # (type, id) already checked
    out: list[ConfigIssue] = []
    for fname, (ftype, ttype), rows, lines in files:
        for (_d, src, dst), line in zip(rows, lines, strict=True):
            for etype, value in ((ftype, src), (ttype, dst)):
                if (etype, value) in seen:
                    continue
                seen.add((etype, value))
                key = (etype, value.casefold())
                got = first.get(key)
                if got is None:
                    first[key] = (value, fname, line)
                    continue
                out.append(
                    ConfigIssue(
                        f"{etype} id {value!r} differs only by case from {got[0]!r} "
                        f"({got[1]}:{got[2]}): they load as two {etype}s, so an event naming "
                        "one never reaches the other's rows",
                        file=fname,
                        line=line,
                        column=1,
                        severity="warning",
                        code="relation_id_case",
                    )
                )
    return tuple(out)


def mixed_dates(files: Iterable[RelationFile]) -> tuple[ConfigIssue, ...]:
    """A ``relation_mixed_dates`` warning for each file holding dated rows and undated ones,
    at its first undated row (naming its first dated one). Undated rows hold on every date
    (SPEC), but on a date before its first dated row or after its last the relation is
    unknown: a map hop through it there is ``empty_mapping``, and a later or ahead date
    ``unknown_relation_date`` (the full date), undated rows or not. ``files`` as for :func:`case_clashes`."""
    out: list[ConfigIssue] = []
    for fname, _types, rows, lines in files:
        dated = next(
            (ln for (d, _s, _t), ln in zip(rows, lines, strict=True) if d is not None), None
        )
        undated = next((ln for (d, _s, _t), ln in zip(rows, lines, strict=True) if d is None), None)
        if dated is None or undated is None:
            continue
        out.append(
            ConfigIssue(
                f"undated row in a relation with dated rows (first at line {dated}): it holds "
                "on every date, but a date before the first dated row or after the last is "
                "still unknown (not loaded), so an event or later date mapped through it "
                "there runs the full date",
                file=fname,
                line=undated,
                column=1,
                severity="warning",
                code="relation_mixed_dates",
            )
        )
    return tuple(out)


def missing_dates(dated: Collection[date], span: tuple[date, date]) -> frozenset[date]:
    """The dates from ``span[0]`` to ``span[1]`` that ``dated`` does not hold."""
    first, last = span
    every = (first + timedelta(days=k) for k in range((last - first).days + 1))
    return frozenset(d for d in every if d not in dated)


def _first_lines(rows: Sequence[Row], lines: Sequence[int]) -> dict[date, int]:
    """Each date of ``rows`` -> the first line it is on."""
    first: dict[date, int] = {}
    for (d, _s, _t), ln in zip(rows, lines, strict=True):
        if d is not None and (d not in first or ln < first[d]):
            first[d] = ln
    return first


_SHOWN = 5  # missing days a relation_missing_days warning lists


def missing_days(files: Iterable[RelationFile]) -> tuple[ConfigIssue, ...]:
    """A ``relation_missing_days`` warning for each file of an ``every_day`` relation with
    dates inside the span of its dated rows that have no dated row (a daily job that failed
    that day): they are not loaded (unknown), so an event mapped through the relation there
    is ``empty_mapping`` and a later or ahead date ``unknown_relation_date`` (the full date).
    It says how many, lists the first few, and is at the first line of the last day loaded
    before the first missing one. ``files`` as for :func:`case_clashes`, every one
    ``every_day``."""
    out: list[ConfigIssue] = []
    for fname, _types, rows, lines in files:
        first_line = _first_lines(rows, lines)
        if not first_line:
            continue
        holes = sorted(missing_dates(first_line, (min(first_line), max(first_line))))
        if not holes:
            continue
        before = max(d for d in first_line if d < holes[0])
        shown = ", ".join(d.isoformat() for d in holes[:_SHOWN])
        more = f", ... ({len(holes) - _SHOWN} more)" if len(holes) > _SHOWN else ""
        out.append(
            ConfigIssue(
                f"every_day relation misses {len(holes)} day(s) inside its span "
                f"{min(first_line).isoformat()}..{max(first_line).isoformat()}: {shown}{more}; "
                "those dates are not loaded (unknown), so an event or later date mapped "
                "through it there runs the full date",
                file=fname,
                line=first_line[before],
                column=1,
                severity="warning",
                code="relation_missing_days",
            )
        )
    return tuple(out)


ISOLATED_DAYS = 60  # a latest date this many days past the one before it stands alone


def isolated_last_date(files: Iterable[RelationFile]) -> tuple[ConfigIssue, ...]:
    """A ``relation_isolated_date`` warning for each file whose latest date is more than
    :data:`ISOLATED_DAYS` days after the date before it (one stray row: a typo'd year, a
    future-dated change). The span of a relation's dated rows is what is loaded, so every
    date between counts as loaded with no row: an entity mapped through it there reaches
    nobody instead of the full date (``unknown_relation_date``) -- an ``ahead`` day past the
    real data no longer widens the run. At the first line of that latest date."""
    out: list[ConfigIssue] = []
    for fname, _types, rows, lines in files:
        first_line = _first_lines(rows, lines)
        if len(first_line) < 2:
            continue
        last, before = sorted(first_line)[-1], sorted(first_line)[-2]
        gap = (last - before).days
        if gap <= ISOLATED_DAYS:
            continue
        out.append(
            ConfigIssue(
                f"the latest date {last.isoformat()} is {gap} days after the one before it "
                f"({before.isoformat()}): every date between counts as loaded with no row, "
                "so an entity mapped through the relation there reaches nobody instead of "
                "running the full date (a typo'd year? a row dated ahead of the rest?)",
                file=fname,
                line=first_line[last],
                column=1,
                severity="warning",
                code="relation_isolated_date",
            )
        )
    return tuple(out)


__all__ = [
    "ISOLATED_DAYS",
    "RelationFile",
    "case_clashes",
    "isolated_last_date",
    "missing_dates",
    "missing_days",
    "mixed_dates",
]
