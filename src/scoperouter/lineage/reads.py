"""What lineage derives: the tables (and columns of each) a piece of code reads, and the
reads it could not resolve.

Invariant: a read is attributed to a table only when the SQL names it (a qualified column,
the only source of its scope, or the only declared source having the column); everything
else is an :class:`Unresolved` entry, listed and never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Origin:
    """Where a read comes from: a file and a 1-based line (0 when unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Unresolved:
    """A read the tool could not resolve (dynamic SQL, an ambiguous column, SELECT *)."""

    origin: Origin
    what: str

    def to_json(self) -> dict[str, object]:
        return {"file": self.origin.file, "line": self.origin.line, "what": self.what}


@dataclass
class Reads:
    """Tables read -> columns read from each, with the first place each was seen."""

    tables: dict[str, set[str]] = field(default_factory=dict)
    table_origin: dict[str, Origin] = field(default_factory=dict)
    column_origin: dict[tuple[str, str], Origin] = field(default_factory=dict)
    writes: set[str] = field(default_factory=set)
    unresolved: list[Unresolved] = field(default_factory=list)
    columns_known: bool = True  # False for table-level routes (INFORMATION_SCHEMA.JOBS)
    parsed: bool = True  # False when the SQL did not parse
    # strings of Python code that are only a table's name (dataset.table -> where)
    mentions: dict[str, Origin] = field(default_factory=dict)

    def add_table(self, table: str, origin: Origin) -> None:
        self.tables.setdefault(table, set())
        self.table_origin.setdefault(table, origin)

    def add_column(self, table: str, column: str, origin: Origin) -> None:
        self.add_table(table, origin)
        self.tables[table].add(column)
        self.column_origin.setdefault((table, column), origin)

    def merge(self, other: Reads) -> None:
        for t, cols in other.tables.items():
            self.add_table(t, other.table_origin[t])
            for c in cols:
                self.add_column(t, c, other.column_origin.get((t, c), other.table_origin[t]))
        self.writes |= other.writes
        self.unresolved.extend(other.unresolved)
        self.columns_known = self.columns_known and other.columns_known
        for t, where in other.mentions.items():
            self.mentions.setdefault(t, where)
