"""Running route tests: each case's events through the planner (and the cascade), compared
with what the case expects.

Invariant: pure -- no I/O, no clock (each event carries its as-of date) -- and every
difference is a :class:`Mismatch` value naming the processor, the field, what was expected
and what the planner decided; a case passes when there is none. Fields an expectation
leaves out are not compared; ``only`` / ``cascade_only`` extend the check to every other
processor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.router.cascade import Step, cascade
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import plan
from scoperouter.routetests.load import LoadedCase, LoadedFile
from scoperouter.routetests.spec import CascadeExpect, DecisionExpect

Status = Literal["passed", "failed"]
Value = str | int | list[str] | list[int] | None


@dataclass(frozen=True)
class Mismatch:
    """One difference: ``where`` (``processor`` or ``cascade processor``), the field, the
    expected value and the actual one (ids and dates as sorted lists)."""

    where: str
    field: str
    expected: Value
    actual: Value

    def to_json(self) -> dict[str, Value]:
        return {
            "where": self.where,
            "field": self.field,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class EventRun:
    """One event of a case: what it is and what differed."""

    label: str
    event: Event
    as_of: date
    mismatches: tuple[Mismatch, ...]


@dataclass(frozen=True)
class CaseResult:
    file: str
    line: int
    name: str
    runs: tuple[EventRun, ...]

    @property
    def status(self) -> Status:
        return "failed" if any(r.mismatches for r in self.runs) else "passed"

    @property
    def mismatches(self) -> tuple[Mismatch, ...]:
        return tuple(m for r in self.runs for m in r.mismatches)


def _ids(values: Iterable[str] | None) -> list[str] | None:
    return None if values is None else sorted(set(values))


def _dates(values: Iterable[date] | None) -> list[str] | None:
    return None if values is None else sorted({d.isoformat() for d in values})


def compare(where: str, want: DecisionExpect, got: Decision | None) -> list[Mismatch]:
    """The fields of ``want`` that ``got`` (None: the processor never ran) does not meet."""
    out: list[Mismatch] = []

    def diff(field: str, expected: Value, actual: Value) -> None:
        if expected != actual:
            out.append(Mismatch(where, field, expected, actual))

    action = got.action if got is not None else "skip"
    if want.action is not None:
        diff("action", want.action, action)
    if got is None:  # never reached: any other field expected means "it runs"
        if want.action is None and want.model_fields_set - {"hop", "hops"}:
            out.append(Mismatch(where, "action", "run", "skip"))
        return out
    if want.scope is not None:
        diff("scope", want.scope, got.scope)
    if want.entity_type is not None:
        diff("entity_type", want.entity_type, got.entity_type)
    if want.reason is not None:
        diff("reason", want.reason, got.reason)
    if want.entity_ids is not None:
        diff("entity_ids", _ids(want.entity_ids), _ids(got.entity_ids))
    if want.entity_ids_include is not None:
        have = set(got.entity_ids or ())
        missing = [i for i in _ids(want.entity_ids_include) or [] if i not in have]
        if missing:
            out.append(Mismatch(where, "entity_ids_include", missing, _ids(got.entity_ids)))
    if want.dates is not None:
        diff("dates", _dates(want.dates), _dates(got.dates))
    if want.dates_include is not None:
        have_d = set(got.dates)
        missing_d = [d for d in want.dates_include if d not in have_d]
        if missing_d:
            out.append(Mismatch(where, "dates_include", _dates(missing_d), _dates(got.dates)))
    return out


def _check_decisions(case: LoadedCase, decisions: Sequence[Decision]) -> list[Mismatch]:
    by_name = {d.processor: d for d in decisions}
    out: list[Mismatch] = []
    for proc, want in case.spec.expect.items():
        out += compare(proc, want, by_name[proc])
    if case.spec.only:
        for d in decisions:
            if d.processor not in case.spec.expect and d.action == "run":
                out.append(Mismatch(d.processor, "action", "skip", f"run ({d.reason})"))
    return out


def _check_cascade(case: LoadedCase, steps: Sequence[Step]) -> list[Mismatch]:
    spec = case.spec.cascade or {}
    out: list[Mismatch] = []
    for proc, want in spec.items():
        mine = [s for s in steps if s.decision.processor == proc]
        where = f"cascade {proc}"
        hops = [s.hop for s in mine]
        if want.hops is not None and list(want.hops) != hops:
            out.append(Mismatch(where, "hops", list(want.hops), hops))
        out += _check_step(where, want, mine, hops)
    if case.spec.cascade_only:
        for proc in sorted({s.decision.processor for s in steps} - set(spec)):
            hops = [s.hop for s in steps if s.decision.processor == proc]
            out.append(Mismatch(f"cascade {proc}", "hops", [], hops))
    return out


def _check_step(
    where: str, want: CascadeExpect, mine: list[Step], hops: list[int]
) -> list[Mismatch]:
    if want.hop is None:
        return compare(where, want, mine[0].decision if mine else None)
    at = [s for s in mine if s.hop == want.hop]
    if not at:
        return [Mismatch(where, "hop", want.hop, hops or None)]
    return compare(f"{where} (hop {want.hop})", want, at[0].decision)


def check_case(cfg: LoadedConfig, file: str, case: LoadedCase) -> CaseResult:
    runs: list[EventRun] = []
    for label, event, as_of in case.events:
        decisions = plan(cfg.registry, cfg.relations, event, as_of)
        mismatches = _check_decisions(case, decisions)
        if case.spec.cascade is not None or case.spec.cascade_only:
            wave = cascade(cfg.registry, cfg.relations, event, as_of)
            mismatches += _check_cascade(case, tuple(wave.steps()))
        runs.append(EventRun(label, event, as_of, tuple(mismatches)))
    return CaseResult(file, case.line, case.spec.name, tuple(runs))


def check_file(loaded: LoadedFile) -> list[CaseResult]:
    return [check_case(loaded.config, str(loaded.path), c) for c in loaded.cases]
