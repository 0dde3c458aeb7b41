"""Reading one relation CSV file (``date,from,to``) into rows, every bad row a ConfigError
naming file:line (moved out of :mod:`~scoperouter.processor_registry.relations`, which still
exports these names).

A file whose last line does not end with a newline (unless that line is blank) is an error
at that line: it is what a reader sees of a file still being written in place, and its last
row may end in a cut id (``lalp1`` of ``lalp12``) -- a made-up id, its player unreached. A
writer pausing between whole rows is not seen here: only an atomic replace (a temporary
file renamed over the old one) or ``relation_data.csv.ready_file`` is safe against that."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

from scoperouter.errors import ConfigError, ConfigIssue

Row = tuple[date | None, str, str]
# exactly YYYY-MM-DD, like an event's game_date: Python 3.11's date.fromisoformat also takes
# "20251119" and ISO weeks ("2025-W47" = its Monday), which would be misread silently
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _unprintable(value: str) -> str:
    """The first character of ``value`` that is not printable, named for an error."""
    c = next(ch for ch in value if not ch.isprintable())
    return f"the non-printable character U+{ord(c):04X} ({unicodedata.name(c, 'a control')})"


# a byte that is not UTF-8, as the surrogateescape error handler reads it (U+DC80-U+DCFF)
_UNDECODED = re.compile("[\udc80-\udcff]")


def _whole_lines(lines: Iterable[str], fname: str) -> Iterator[str]:
    """``lines`` (of a file opened with ``newline=""``: each keeps its line break); a
    ConfigError at the last one when no newline ends it and it is not blank (module
    docstring: a file cut short by a writer still at it), and at the line and column of a
    byte that is not UTF-8 (the file is decoded with surrogateescape: a strict decoder
    fails on its whole read-ahead chunk, and so named a line up to 8 KiB before it)."""
    for n, text in enumerate(lines, 1):
        bad = _UNDECODED.search(text)
        if bad is not None:  # the file is read with surrogateescape: a byte not UTF-8
            raise ConfigError(
                [
                    ConfigIssue(
                        f"unreadable CSV: not UTF-8 (the byte 0x{ord(bad.group()) - 0xDC00:02x}); "
                        "save the file as UTF-8",
                        file=fname,
                        line=n,
                        column=bad.start() + 1,
                    )
                ]
            )
        if not text.endswith(("\n", "\r")) and text.strip():
            raise ConfigError(
                [
                    ConfigIssue(
                        "the last line does not end with a newline: the file is cut short "
                        "(read while still being written?) and its last id may be cut too; "
                        "replace relation files atomically (write a temporary file, then "
                        "rename it) or touch relation_data.csv.ready_file once they are written",
                        file=fname,
                        line=n,
                        column=1,
                    )
                ]
            )
        yield text


def read_relation_csv(path: Path, lines: list[int] | None = None) -> list[Row]:
    """Rows of one ``date,from,to`` CSV. Raises ConfigError naming file:line on bad rows.
    ``lines``, when given, receives the line of each row returned, in order."""
    rows: list[Row] = []
    fname = str(path)
    try:
        # a spreadsheet's BOM is not data; a byte not UTF-8 is refused at its line and column
        fh = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    f"cannot read relation data: {exc.strerror}", file=fname, code="relation_data"
                )
            ]
        ) from exc
    with fh:
        # strict: an unclosed quote is an error, never one field holding the rest of the file
        # skipinitialspace: `, "LAL"` is the id LAL, not the id "LAL" with its quotes
        # a last line without its newline (a file cut short) is an error, never a row
        reader = csv.reader(_whole_lines(fh, fname), strict=True, skipinitialspace=True)
        try:
            header = next(reader)
        except StopIteration:
            raise ConfigError(
                [
                    ConfigIssue(
                        "empty relation file: expected header date,from,to",
                        file=fname,
                        line=1,
                        column=1,
                    )
                ]
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(
                [ConfigIssue(f"unreadable CSV: {exc}", file=fname, line=1, column=1)]
            ) from exc
        if [h.strip() for h in header] != ["date", "from", "to"]:
            raise ConfigError(
                [
                    ConfigIssue(
                        # never echo the line: the path may be a symlink to any file
                        f"header must be date,from,to (the first line has {len(header)} "
                        "column(s) and is not that header)",
                        file=fname,
                        line=1,
                        column=1,
                    )
                ]
            )
        line = reader.line_num
        try:
            for rec in reader:
                first, line = line + 1, reader.line_num
                if not rec or all(not c.strip() for c in rec):
                    continue
                if len(rec) != 3:
                    raise ConfigError(
                        [
                            ConfigIssue(
                                f"expected 3 columns, got {len(rec)}",
                                file=fname,
                                line=line,
                                column=1,
                            )
                        ]
                    )
                if any("\n" in c or "\r" in c for c in rec):
                    raise ConfigError(
                        [
                            ConfigIssue(
                                "a quoted field spans lines (an unclosed quote?)",
                                file=fname,
                                line=first,
                                column=1,
                            )
                        ]
                    )
                ds, src, dst = (c.strip() for c in rec)
                if not src or not dst:
                    raise ConfigError(
                        [ConfigIssue("empty 'from' or 'to'", file=fname, line=line, column=1)]
                    )
                for name, value in (("from", src), ("to", dst)):
                    if not value.isprintable():
                        raise ConfigError(
                            [
                                ConfigIssue(
                                    f"'{name}' id holds {_unprintable(value)}: it would match "
                                    "no event id and no processor row",
                                    file=fname,
                                    line=line,
                                    column=1,
                                )
                            ]
                        )
                d: date | None = None
                if ds:
                    try:
                        if not _DATE_RE.fullmatch(ds):
                            raise ValueError(ds)
                        d = date.fromisoformat(ds)
                    except ValueError as exc:
                        raise ConfigError(
                            [
                                ConfigIssue(
                                    f"invalid date {ds[:20]!r} (expected YYYY-MM-DD)",
                                    file=fname,
                                    line=line,
                                    column=1,
                                )
                            ]
                        ) from exc
                rows.append((d, src, dst))
                if lines is not None:
                    lines.append(line)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(
                # the line the bad row starts on (an unclosed quote runs to the end)
                [ConfigIssue(f"unreadable CSV: {exc}", file=fname, line=line + 1, column=1)]
            ) from exc
    return rows
