"""Semantic checks of the closed-loop keys (docs/ledger.md): a barrier's
``min_complete.critical`` names processors upstream of it, and a barrier cannot wait
forever on an upstream whose lost completion nothing bounds.

Invariant: findings only (no behaviour). An unknown or non-upstream name is an error
(``bad_barrier``), since the barrier would wait for something that never runs. A barrier
that must wait for an upstream with no ``completion_timeout`` (its own or
``defaults.completion_timeout``) -- it has no ``timeout``, holds at it (``on_timeout:
hold``), or ``min_complete`` still needs that upstream -- is a warning
(``barrier_may_wait_forever``): that upstream's trigger stays open until a completion names
it, so one lost completion holds the processor's triggers for that date for good. A
barrier with no upstream publisher at all never holds anything, a sign of a cut DAG (a
``publishes`` typo): a warning (``barrier_without_upstream``).
"""

from __future__ import annotations

from collections import defaultdict

from scoperouter.processor_registry.findings import Report
from scoperouter.processor_registry.model_loop import BarrierSpec
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.yaml_positions import YamlPath


def _upstream(spec: RoutesSpec, name: str) -> set[str]:
    """Every processor upstream of ``name`` (transitive; every publisher of an input, as
    the router's barrier counts them: ``CompiledRegistry.upstream_of``)."""
    publishers: dict[str, list[str]] = defaultdict(list)
    for n, p in spec.processors.items():
        if p.publishes:
            publishers[p.publishes].append(n)
    seen: set[str] = set()
    todo = [name]
    while todo:
        for inp in spec.processors[todo.pop()].inputs:
            for up in publishers.get(inp.source, ()):
                if up not in seen and up != name:
                    seen.add(up)
                    todo.append(up)
    return seen


def _awaited(b: BarrierSpec, ups: set[str]) -> tuple[set[str], str, str]:
    """The upstreams ``b`` waits for with no end of its own, why, and the barrier setting
    that would end the wait (the rules of ``router.barrier.classify``)."""
    if b.timeout is None:
        return ups, "has no timeout", "give the barrier a timeout (on_timeout: run)"
    if b.on_timeout == "hold":
        return ups, "holds at its timeout (on_timeout: hold)", "set on_timeout: run"
    mc = b.min_complete
    if mc is None:
        return set(), "", ""
    if mc.share > 0:
        return (
            ups,
            f"needs min_complete.share {mc.share:g} of its upstreams at its timeout",
            "set min_complete.share: 0 and name only bounded upstreams as critical",
        )
    return (
        set(mc.critical) & ups,
        "needs its min_complete.critical upstreams at its timeout",
        "leave them out of min_complete.critical",
    )


def _no_completion_timeout(spec: RoutesSpec, names: set[str]) -> list[str]:
    if spec.defaults.completion_timeout is not None:
        return []
    return sorted(n for n in names if spec.processors[n].completion_timeout is None)


def _message(barrier: str, why: str, exposed: list[str], held: str, alt: str) -> str:
    names = ", ".join(repr(n) for n in exposed)
    return (
        f"{barrier} {why}, so it waits out every open trigger of upstreams with no "
        f"completion_timeout ({names}): one lost completion holds {held} for that date "
        "forever; set completion_timeout on them or defaults.completion_timeout (the trigger "
        f"then times out, is re-dispatched and at worst dead-lettered, ending the wait), or {alt}"
    )


def check_barrier_waits(spec: RoutesSpec, r: Report) -> None:
    """``barrier_may_wait_forever`` warnings (module docstring): one per processor barrier,
    one at ``defaults.barrier`` for the processors that inherit it."""
    inherited: dict[str, list[str]] = {}  # processor using defaults.barrier -> exposed ups
    why_default = alt_default = ""
    for name, p in spec.processors.items():
        b = p.barrier if p.barrier is not None else spec.defaults.barrier
        if b is None:
            continue
        awaited, why, alt = _awaited(b, _upstream(spec, name))
        exposed = _no_completion_timeout(spec, awaited)
        if not exposed:
            continue
        if p.barrier is None:
            inherited[name] = exposed
            why_default, alt_default = why, alt.replace("the barrier", "defaults.barrier")
            continue
        path: YamlPath = ("processors", name, "barrier")
        msg = _message("the barrier", why, exposed, f"{name}'s triggers", alt)
        r.add(path, msg, code="barrier_may_wait_forever", severity="warning", key=True)
    if inherited:
        users = ", ".join(sorted(inherited))
        exposed = sorted({u for ups in inherited.values() for u in ups})
        msg = _message(
            f"defaults.barrier (used by {users})",
            why_default,
            exposed,
            "their triggers",
            alt_default,
        )
        r.add(
            ("defaults", "barrier"),
            msg,
            code="barrier_may_wait_forever",
            severity="warning",
            key=True,
        )


def check_barrier_upstreams(spec: RoutesSpec, r: Report) -> None:
    """``barrier_without_upstream`` warnings: a processor's own barrier with no upstream
    publisher (no processor publishes any of its inputs) never holds anything -- often a
    ``publishes`` typo that cut the DAG; ``defaults.barrier`` when no processor using it has
    an upstream (processors reading only raw sources are normal users of it)."""
    users: list[str] = []
    default_useful = False
    for name, p in spec.processors.items():
        if p.barrier is None:
            if spec.defaults.barrier is not None:
                users.append(name)
                default_useful = default_useful or bool(_upstream(spec, name))
            continue
        if _upstream(spec, name):
            continue
        sources = ", ".join(repr(i.source) for i in p.inputs)
        r.add(
            ("processors", name, "barrier"),
            f"the barrier of {name!r} has no upstream to wait for: no processor publishes its "
            f"inputs ({sources}), so it never holds a trigger; check those names against the "
            "processors' publishes (a typo cuts the DAG), or remove the barrier",
            code="barrier_without_upstream",
            severity="warning",
            key=True,
        )
    if users and not default_useful:
        r.add(
            ("defaults", "barrier"),
            f"defaults.barrier has no upstream to wait for in any processor using it "
            f"({', '.join(users)}): no processor publishes their inputs, so it never holds a "
            "trigger; check the inputs against the processors' publishes (a typo cuts the "
            "DAG), or remove it",
            code="barrier_without_upstream",
            severity="warning",
            key=True,
        )


def check_barriers(spec: RoutesSpec, r: Report) -> None:
    d = spec.defaults.barrier
    if d is not None and d.min_complete is not None:
        for i, c in enumerate(d.min_complete.critical):
            if c not in spec.processors:
                r.add(
                    ("defaults", "barrier", "min_complete", "critical", i),
                    f"unknown processor {c!r}",
                    code="bad_barrier",
                )
    for name, p in spec.processors.items():
        b = p.barrier
        if b is None or b.min_complete is None:
            continue
        ups = _upstream(spec, name)
        for i, c in enumerate(b.min_complete.critical):
            if c not in ups:
                what = "is not upstream of it" if c in spec.processors else "is not a processor"
                r.add(
                    ("processors", name, "barrier", "min_complete", "critical", i),
                    f"{c!r} {what}: the barrier would wait for it forever",
                    code="bad_barrier",
                )
