"""Fenced code blocks of a Markdown guide, for the tests that run a guide's commands as
written (docs/migration.md, docs/rollout.md). A block is skipped when the last non-blank
line before its opening fence is the guide's skip mark."""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    index: int
    lang: str
    line: int  # 1-based line of the opening fence
    code: str
    skip: bool

    @property
    def id(self) -> str:
        return f"{self.index:02d}-{self.lang}-L{self.line}"


def parse_blocks(text: str, skip_mark: str) -> list[Block]:
    """Every fenced block with a language, and whether ``skip_mark`` marks it skipped."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group("lang"):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        prev = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        code = "\n".join(lines[i + 1 : j]) + "\n"
        blocks.append(Block(len(blocks), m.group("lang"), i + 1, code, prev == skip_mark))
        i = j + 1
    return blocks
