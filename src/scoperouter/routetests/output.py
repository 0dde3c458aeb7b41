"""Route-test results as text (with a readable diff per failure), JSON and JUnit XML.

Invariant: rendering only -- the three outputs are built from the same
:class:`~scoperouter.routetests.check.CaseResult` values and say the same thing. JUnit XML
follows the de-facto schema CI systems read (Jenkins, GitLab, GitHub test reporters):
``<testsuites>`` > one ``<testsuite>`` per file > one ``<testcase>`` per case, with a
``<failure>`` holding the diff, and an ``<error>`` case for a file that did not load.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from scoperouter.errors import ConfigIssue
from scoperouter.routetests.check import CaseResult, EventRun, Mismatch, Value


@dataclass(frozen=True)
class FileError:
    """A test file that did not load (syntax, schema, unknown processor, bad event...)."""

    file: str
    issues: tuple[ConfigIssue, ...]


def _show(v: Value) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def mismatch_lines(m: Mismatch) -> list[str]:
    """``where.field`` with the expected and actual values; for id and date sets, also what
    is missing and what is extra."""
    head = f"{m.where}: {m.field}"
    if m.field.endswith("_include"):
        return [head, f"    missing:  {_show(m.expected)}", f"    actual:   {_show(m.actual)}"]
    if not (isinstance(m.expected, list) and isinstance(m.actual, list)):
        return [f"{head}: expected {_show(m.expected)}, got {_show(m.actual)}"]
    want, got = [str(x) for x in m.expected], [str(x) for x in m.actual]
    lines = [head, f"  - expected: {_show(m.expected)}", f"  + actual:   {_show(m.actual)}"]
    missing = [x for x in want if x not in got]
    extra = [x for x in got if x not in want]
    if missing:
        lines.append(f"    missing:  {', '.join(missing)}")
    if extra:
        lines.append(f"    extra:    {', '.join(extra)}")
    return lines


def _run_header(run: EventRun, several: bool) -> str:
    ev = run.event
    day = ev.game_date.isoformat() if ev.game_date else f"{ev.start_date}..{ev.end_date}"
    label = f"{run.label}: " if several else ""
    return f"{label}event {ev.event_id} ({ev.source} {day}, as of {run.as_of})"


def failure_text(result: CaseResult) -> str:
    """The diff of a failed case, as printed and as put in JUnit's ``<failure>``."""
    several = len(result.runs) > 1
    lines: list[str] = []
    for run in result.runs:
        if not run.mismatches:
            continue
        lines.append(_run_header(run, several))
        for m in run.mismatches:
            lines += ["  " + x for x in mismatch_lines(m)]
    return "\n".join(lines)


def summary(results: Sequence[CaseResult], errors: Sequence[FileError]) -> dict[str, int]:
    failed = sum(1 for r in results if r.status == "failed")
    return {
        "tests": len(results),
        "passed": len(results) - failed,
        "failed": failed,
        "errors": len(errors),
    }


def to_text(results: Sequence[CaseResult], errors: Sequence[FileError], verbose: bool) -> str:
    lines: list[str] = []
    for e in errors:
        lines.append(f"ERROR {e.file}: did not load")
        lines += ["  " + i.format() for i in e.issues]
    for r in results:
        if r.status == "failed":
            lines.append(f"FAIL {r.file}:{r.line}: {r.name}")
            lines += ["  " + x for x in failure_text(r).splitlines()]
        elif verbose:
            lines.append(f"ok   {r.file}:{r.line}: {r.name}")
    s = summary(results, errors)
    files = len({r.file for r in results} | {e.file for e in errors})
    lines.append(
        f"route tests: {s['passed']} passed, {s['failed']} failed, {s['errors']} "
        f"file error{'s' * (s['errors'] != 1)} ({s['tests']} tests in {files} "
        f"file{'s' * (files != 1)})"
    )
    return "\n".join(lines)


def to_json(results: Sequence[CaseResult], errors: Sequence[FileError]) -> dict[str, object]:
    return {
        **summary(results, errors),
        "ok": not errors and all(r.status == "passed" for r in results),
        "results": [
            {
                "file": r.file,
                "line": r.line,
                "name": r.name,
                "status": r.status,
                "events": [
                    {
                        "label": run.label,
                        "event_id": run.event.event_id,
                        "as_of": run.as_of.isoformat(),
                        "mismatches": [m.to_json() for m in run.mismatches],
                    }
                    for run in r.runs
                ],
            }
            for r in results
        ],
        "file_errors": [
            {"file": e.file, "issues": [i.to_json() for i in e.issues]} for e in errors
        ],
    }


def to_junit(results: Sequence[CaseResult], errors: Sequence[FileError]) -> str:
    """JUnit XML (UTF-8, with declaration)."""
    s = summary(results, errors)
    root = ET.Element(
        "testsuites",
        name="scoperouter route tests",
        tests=str(s["tests"] + s["errors"]),
        failures=str(s["failed"]),
        errors=str(s["errors"]),
    )
    files = list(dict.fromkeys([e.file for e in errors] + [r.file for r in results]))
    for file in files:
        mine = [r for r in results if r.file == file]
        bad = [e for e in errors if e.file == file]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=file,
            tests=str(len(mine) + len(bad)),
            failures=str(sum(1 for r in mine if r.status == "failed")),
            errors=str(len(bad)),
            skipped="0",
        )
        for e in bad:
            case = ET.SubElement(suite, "testcase", classname=file, name="load", file=file)
            err = ET.SubElement(
                case, "error", message=f"{file} did not load", type="RouteTestFileError"
            )
            err.text = "\n".join(i.format() for i in e.issues)
        for r in mine:
            case = ET.SubElement(
                suite, "testcase", classname=file, name=r.name, file=file, line=str(r.line)
            )
            if r.status == "failed":
                n = len(r.mismatches)
                fail = ET.SubElement(
                    case,
                    "failure",
                    message=f"{n} mismatch{'es' * (n != 1)}",
                    type="RouteMismatch",
                )
                fail.text = failure_text(r)
    for el in root.iter():  # a name or message holding a character XML 1.0 cannot carry
        el.attrib = {k: _xml_safe(v) for k, v in el.attrib.items()}
        if el.text:
            el.text = _xml_safe(el.text)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# characters XML 1.0 has no way to write (control characters but tab and line breaks, lone
# surrogates, U+FFFE/U+FFFF): written as Python escapes, so every JUnit reader parses the file
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _XML_INVALID.sub(lambda m: ascii(m.group())[1:-1], text)
