"""The cases every relation-data warning's ``validate`` test runs: shown without
``--strict`` (exit 0), failing with it, silenced by ``validate.ignore`` in routes.yaml or by
``--ignore`` (shared by test_relation_every_day, _mixed_dates and _id_case)."""

from __future__ import annotations

WARNING_CASE_KEYS = ("extra", "args", "code", "shown")


def warning_cases(code: str) -> list[tuple[str, list[str], int, bool]]:
    """(routes.yaml extra, validate's arguments, its exit code, whether the warning shows)."""
    return [
        ("", [], 0, True),
        ("", ["--strict"], 1, True),
        (f"validate: {{ignore: [{code}]}}\n", ["--strict"], 0, False),
        ("", ["--strict", "--ignore", code], 0, False),
    ]
