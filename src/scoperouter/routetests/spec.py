"""Pydantic models of a route-test file (``routes.tests.yaml``). Frozen and strict.

Invariant: a field left out of an expectation is not checked; every field given is, and
nothing that checks nothing loads (an empty expectation, an empty ``*_include`` list, a case
with no expectation): it would pass whatever the registry decides. The models say only what a file may contain; which processors exist, and whether the events
are valid events, is checked against the registry by :mod:`scoperouter.routetests.load`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from scoperouter.router.decisions import Reason

Action = Literal["run", "skip"]
PositiveInt = Annotated[StrictInt, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DecisionExpect(_Strict):
    """What one processor's decision must be. Only the fields given are checked."""

    action: Action | None = Field(default=None, description="run or skip.")
    scope: Literal["entities", "date"] | None = Field(
        default=None, description="entities or date (a run's scope)."
    )
    entity_type: str | None = Field(default=None, description="The ids' entity type.")
    entity_ids: tuple[str, ...] | None = Field(
        default=None, description="Exactly these ids, in any order."
    )
    entity_ids_include: tuple[str, ...] | None = Field(
        default=None, min_length=1, description="At least these ids."
    )
    dates: tuple[date, ...] | None = Field(
        default=None, description="Exactly these dates (YYYY-MM-DD), in any order."
    )
    dates_include: tuple[date, ...] | None = Field(
        default=None, min_length=1, description="At least these dates."
    )
    reason: Reason | None = Field(default=None, description="The decision's reason code.")

    @model_validator(mode="after")
    def _expects_something(self) -> DecisionExpect:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(
                "expects nothing: write run or skip, or the fields to check (action, scope, "
                "entity_ids, dates, reason, ...)"
            )
        return self


class CascadeExpect(DecisionExpect):
    """What the downstream wave must do for one processor (``explain --cascade``).

    ``action: skip`` means the wave never reaches it. The decision fields are compared with
    its run at ``hop`` (default: the first hop at which it runs)."""

    hop: PositiveInt | None = Field(
        default=None, description="Compare with the run at this hop (it must run there)."
    )
    hops: tuple[PositiveInt, ...] | None = Field(
        default=None, description="Exactly the hops at which it runs."
    )

    @model_validator(mode="after")
    def _skip_checks_nothing_else(self) -> CascadeExpect:
        # the wave keeps runs only: a processor it never reaches has no decision whose
        # reason, scope or ids could be compared, and no hop -- such a field would be
        # ignored (or never met) whatever the registry decides
        others = sorted(self.model_fields_set - {"action"}) if self.action == "skip" else []
        if others:
            raise ValueError(
                "action: skip means the wave never reaches it, so "
                f"{', '.join(others)} cannot be checked (the wave keeps no skip decisions); "
                "leave them out, or check the skip under expect"
            )
        return self


def _shorthand(value: object) -> object:
    """``run`` / ``skip`` stand for ``{action: run}`` / ``{action: skip}``."""
    return {"action": value} if value in ("run", "skip") else value


class RouteTest(_Strict):
    """One case: an event (or several) and what the registry must decide about it."""

    name: str = Field(min_length=1, description="Shown in reports and JUnit XML.")
    description: str | None = None
    event: dict[str, Any] | str | None = Field(
        default=None, description="An event (any accepted shape), or a JSON file of one."
    )
    events: list[dict[str, Any]] | str | None = Field(
        default=None,
        description="Several events, or a JSON Lines file of them: each one must meet every "
        "expectation (e.g. one update in its canonical and legacy shapes).",
    )
    as_of: date | None = Field(
        default=None,
        description="The router's today (default: the file's as_of, else the event's date).",
    )
    expect: dict[str, DecisionExpect] = Field(
        default_factory=dict, description="Processor -> its expected decision for the event."
    )
    only: StrictBool = Field(
        default=False, description="Every processor not under expect must skip."
    )
    cascade: dict[str, CascadeExpect] | None = Field(
        default=None, description="Processor -> what the downstream wave does to it."
    )
    cascade_only: StrictBool = Field(
        default=False, description="The wave reaches no processor not under cascade."
    )

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("expect", "cascade"):
                if isinstance(data.get(key), dict):
                    data[key] = {k: _shorthand(v) for k, v in data[key].items()}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> RouteTest:
        if (self.event is None) == (self.events is None):
            raise ValueError("give exactly one of 'event' and 'events'")
        if not (self.expect or self.cascade or self.only or self.cascade_only):
            raise ValueError(
                "expects nothing: add 'expect', 'cascade', 'only: true' or 'cascade_only: true'"
            )
        if isinstance(self.events, list) and not self.events:
            raise ValueError("'events' is empty")
        return self


class RouteTestFile(_Strict):
    """A file of route tests for one registry."""

    config: str | None = Field(
        default=None,
        description="The registry, relative to this file (default: the nearest routes.yaml "
        "in this directory or above).",
    )
    as_of: date | None = Field(default=None, description="Default as_of of every test.")
    tests: list[RouteTest] = Field(min_length=1, description="The cases.")
