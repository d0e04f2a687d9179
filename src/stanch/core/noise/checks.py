"""What a *new* silence or maintenance window must satisfy before it is put in force.

New rules pass :func:`check_new_silence` / :func:`check_new_window` (at least one narrowing
positive matcher, bounded sizes and durations); rules loaded from the store are taken as
they were saved, so a rule stored before a limit existed still loads. That is why these
checks live apart from the rules' own ``__post_init__``, which every loaded rule passes too.
"""

from __future__ import annotations

import math
from typing import Final

from stanch.core.errors import ValidationError
from stanch.core.noise.rules import DAY_S, MaintenanceWindow, Silence

MAX_MATCHERS: Final = 20  # per silence (and routes per window): more is a list, not a rule
MAX_PATTERN: Final = 200  # characters per glob
MAX_COMMENT: Final = 2000
MAX_SPAN_S: Final = 365 * DAY_S  # a rule that lasts longer is a config change, not a silence
MAX_LEAD_S: Final = 365 * DAY_S  # how far ahead a rule may be planned


def resolve_span(
    now: float,
    starts_at: float | None = None,
    ends_at: float | None = None,
    duration_s: float | None = None,
) -> tuple[float, float]:
    """(start, end) of a new rule from what a person gave: the start defaults to ``now`` (a
    start in the past is ``now``, as in Alertmanager: what is over cannot be silenced), and
    exactly one of an end or a duration."""
    start = now if starts_at is None else max(starts_at, now)
    if (ends_at is None) == (duration_s is None):
        raise ValidationError("give either ends_at or duration (one of them, not both)")
    if duration_s is not None:
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ValidationError("duration must be positive")
        return start, start + duration_s
    assert ends_at is not None
    if ends_at <= now:
        raise ValidationError("ends_at must be in the future")
    return start, ends_at


def _check_span(noun: str, starts_at: float, ends_at: float, now: float) -> None:
    if not (math.isfinite(starts_at) and math.isfinite(ends_at)):
        raise ValidationError(f"a {noun}'s start and end must be finite times")
    if ends_at <= starts_at:
        raise ValidationError(f"a {noun} must end after it starts")
    if ends_at <= now:
        raise ValidationError(f"a {noun} must end in the future")
    if ends_at - starts_at > MAX_SPAN_S:
        raise ValidationError(
            f"a {noun} may last at most {MAX_SPAN_S / DAY_S:.0f} days; "
            f"this one lasts {(ends_at - starts_at) / DAY_S:.0f}"
        )
    if starts_at - now > MAX_LEAD_S:
        raise ValidationError(f"a {noun} may start at most {MAX_LEAD_S / DAY_S:.0f} days ahead")


def _check_text(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters")


def check_new_silence(silence: Silence, now: float) -> None:
    """Refuse a silence nobody should create: one that mutes everything, or is huge, or is
    over before it starts. (Loaded silences skip this: see the module docstring.)"""
    if len(silence.matchers) > MAX_MATCHERS:
        raise ValidationError(
            f"a silence has at most {MAX_MATCHERS} matchers, not {len(silence.matchers)}"
        )
    for matcher in silence.matchers:
        if matcher.field == "label:":
            raise ValidationError("a label matcher names its label: label:NAME")
        _check_text(f"matcher {matcher.field!r}'s pattern", matcher.pattern, MAX_PATTERN)
    if not any(m.narrows for m in silence.matchers):
        raise ValidationError(
            "a silence needs at least one positive matcher (field=glob) with a literal "
            "character, not wildcards alone: without one it would mute every alert"
        )
    _check_text("the comment", silence.comment, MAX_COMMENT)
    _check_span("silence", silence.starts_at, silence.ends_at, now)


def check_new_window(window: MaintenanceWindow, now: float) -> None:
    """Refuse a window that is huge, over already, or (weekly) zero minutes long."""
    if not window.service.strip():
        raise ValidationError("a maintenance window names its service")
    if len(window.routes) > MAX_MATCHERS:
        raise ValidationError(f"a maintenance window lists at most {MAX_MATCHERS} routes")
    for route in (window.service, *window.routes):
        _check_text("a service or route", route, MAX_PATTERN)
    _check_text("the comment", window.comment, MAX_COMMENT)
    if window.starts_at is not None and window.ends_at is not None:
        _check_span("maintenance window", window.starts_at, window.ends_at, now)
    elif window.start_minute == window.end_minute:
        raise ValidationError(
            "a weekly maintenance window must end at another minute than it starts"
        )
