"""What a *new* silence or maintenance window must satisfy before it is put in force.

New rules pass :func:`check_new_silence` / :func:`check_new_window` (at least one narrowing
positive matcher, bounded sizes and durations, patterns that can match something: a ``kind``
glob that names an alert kind, a ``route`` glob with its method, ``POST /checkout`` or
``* /checkout`` and never ``/checkout`` alone); rules loaded from the store are taken as
they were saved, so a rule stored before a limit existed still loads. That is why these
checks live apart from the rules' own ``__post_init__``, which every loaded rule passes too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Final

from stanch.core.alerts import AlertKind
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
        if matcher.field == "kind":
            check_kind_glob(matcher.pattern)
        elif matcher.field == "route":
            check_route_glob(matcher.pattern)
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
    for route in window.routes:
        check_route_glob(route)
    _check_text("the comment", window.comment, MAX_COMMENT)
    if window.starts_at is not None and window.ends_at is not None:
        _check_span("maintenance window", window.starts_at, window.ends_at, now)
    elif window.start_minute == window.end_minute:
        raise ValidationError(
            "a weekly maintenance window must end at another minute than it starts"
        )


ROUTE_HINT: Final = "route names include the method, e.g. 'POST /checkout' or '* /checkout'"


def check_kind_glob(pattern: str) -> None:
    """Refuse a ``kind`` glob that matches no alert kind (a typo such as ``error_burts``
    would be accepted and then mute nothing, or with ``!=`` everything)."""
    if not any(fnmatchcase(kind.value, pattern) for kind in AlertKind):
        kinds = ", ".join(kind.value for kind in AlertKind)
        raise ValidationError(f"kind {pattern!r} matches no alert kind; the kinds are: {kinds}")


def check_route_glob(pattern: str) -> None:
    """Refuse a route glob that starts with ``/``: routes are ``"METHOD /template"`` (or
    ``"*"`` for a whole service), so a path alone never matches one."""
    if pattern.startswith("/"):
        raise ValidationError(
            f"route {pattern!r} can never match: {ROUTE_HINT} ('* {pattern}' for any method)"
        )


def _series_example(series: list[tuple[str, str]]) -> str:
    named = [s for s in series if s[1] != "*"] or series
    if not named:
        return "the server has seen no traffic yet"
    service, route = min(named)
    return f"series seen look like service={service} route={route}"


def silence_series_warnings(silence: Silence, series: Iterable[tuple[str, str]]) -> list[str]:
    """Why ``silence`` may mute nothing: no (service, route) in ``series`` (those the engine
    watches) passes its service and route matchers. Empty when some series does, or when
    the silence names neither a service nor a route, or only alerts from another source
    (outside tools name services and routes the engine may never have measured)."""
    matchers = [m for m in silence.matchers if m.field in ("service", "route")]
    if not matchers or any(
        m.field == "source" and m.equal and not fnmatchcase("detector", m.pattern)
        for m in silence.matchers
    ):
        return []
    seen = list(series)
    for service, route in seen:
        values = {"service": service, "route": route}
        if all(fnmatchcase(values[m.field], m.pattern) is m.equal for m in matchers):
            return []
    what = " ".join(str(m) for m in matchers)
    return [
        f"{what} matches no series seen so far ({_series_example(seen)}): the silence is in "
        f"force but mutes nothing until such a route has traffic; {ROUTE_HINT}"
    ]


def window_series_warnings(
    window: MaintenanceWindow, series: Iterable[tuple[str, str]]
) -> list[str]:
    """Why ``window`` may cover nothing: its service, or one of its route globs, matches no
    (service, route) in ``series`` (those the engine watches)."""
    seen = list(series)
    routes = [route for service, route in seen if service == window.service]
    if not routes:
        return [
            f"service {window.service!r} matches no series seen so far "
            f"({_series_example(seen)}): the window is in force but covers nothing until "
            "the service has traffic"
        ]
    return [
        f"route {glob!r} of service {window.service!r} matches no series seen so far "
        f"(routes seen: {', '.join(sorted(routes)[:5])}): the window covers it only once "
        f"such a route has traffic; {ROUTE_HINT}"
        for glob in window.routes
        if not any(fnmatchcase(route, glob) for route in routes)
    ]
