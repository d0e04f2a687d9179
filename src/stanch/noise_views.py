"""The shapes of a Stanch server's noise-control answers, as the CLI reads them.

An answer is trusted only once it has the shape a Stanch server gives: every field the CLI
prints is checked strictly here (a number is not "3", a time is a real date, an id is one
Stanch makes), so a proxy's error page or an older server's reply becomes one clear line in
:mod:`stanch.noise_cli`, never a traceback or a made-up table cell.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter
from pydantic_core import PydanticCustomError

RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _a_time(ts: float) -> float:
    """Unix seconds that are a date the CLI prints (years 1 to 9999): any other
    number makes the whole answer unexpected, so no table ever shows a made-up time."""
    try:
        datetime.fromtimestamp(ts, UTC)
    except (OverflowError, ValueError, OSError):
        raise PydanticCustomError(
            "time", "Input should be a time in Unix seconds (years 1 to 9999)"
        ) from None
    return ts


def _a_rule_id(text: str) -> str:
    """An id as Stanch makes them: it is printed alone for ``ID=$(...)`` and is a URL path
    segment in the next command."""
    if not RULE_ID.fullmatch(text):
        raise PydanticCustomError("rule_id", "Input should be a rule id such as S-0001")
    return text


Time = Annotated[float, AfterValidator(_a_time)]
RuleId = Annotated[str, AfterValidator(_a_rule_id)]


class _View(BaseModel):
    """The fields of an answer the CLI reads, checked strictly (a number is not "3", a
    string is not null); fields not named are left alone (``--json`` prints them)."""

    model_config = ConfigDict(strict=True, frozen=True, allow_inf_nan=False)


class MatcherView(_View):
    field: str
    op: str
    pattern: str


class RuleView(_View):
    """What silences and maintenance windows have in common."""

    id: RuleId
    created_by: str
    comment: str
    status: str
    ended_at: Time | None = None
    ended_by: str | None = None


class SilenceView(RuleView):
    matchers: list[MatcherView]
    starts_at: Time
    ends_at: Time
    warnings: list[str] = []  # on a create answer only, and not from older servers


class WindowView(RuleView):
    service: str
    routes: list[str]
    weekly: bool
    starts_at: Time | None
    ends_at: Time | None
    schedule: str
    warnings: list[str] = []  # as SilenceView's


class HeldView(_View):
    at: Time
    service: str
    route: str
    kind: str
    cause: str
    rule: str
    held: bool
    reason: str


A_SILENCE: Final = TypeAdapter(SilenceView)
SILENCES: Final = TypeAdapter(list[SilenceView])
A_WINDOW: Final = TypeAdapter(WindowView)
WINDOWS: Final = TypeAdapter(list[WindowView])
HELD: Final = TypeAdapter(list[HeldView])
