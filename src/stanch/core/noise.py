"""Noise control: silences, maintenance windows and inhibition.

A suppressed alert is never lost: it is recorded with the reason, and if it is still firing
when its silence or window ends, or when the alert that inhibited it clears, it goes on to
open or join an incident then (as Alertmanager does).

*Inhibition* here means a service-wide alert explains the per-route alerts of the same kind
whose relative change is about the same as the service's (within ``INHIBIT_FACTOR``): when the
whole service lost 80% of its traffic, six routes each losing 80% are one problem, not seven.
A route whose change is far larger than the service's (checkout failing 70% while the service
fails 7%) is the cause, not an echo, and is never inhibited.

Matchers are globs, equal (``route=GET /search*``) or not (``route!=GET /health``, like
Alertmanager's ``isEqual: false``). There are no regular-expression matchers on purpose:
Python's ``re`` has no time limit, alerts are matched inside the engine's step, and a
pattern check for catastrophic backtracking is a deny-list that misses shapes such as
``(a|aa)+$``; one bad silence would stall detection for every service. Globs plus negation
cover what silences are for (a service, some routes, a kind, a label).

New rules pass :func:`check_new_silence` / :func:`check_new_window` (at least one narrowing
positive matcher, bounded sizes and durations); rules loaded from the store are taken as
they were saved, so a rule stored before a limit existed still loads.

>>> silence = Silence("S-1", (Matcher("route", "GET /search"),), 0.0, 60.0, "ops", "load test")
>>> silence.active(30.0), silence.active(61.0)
(True, False)
>>> str(parse_matcher("route != GET /health"))
'route!=GET /health'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Final, Literal

from stanch.core.alerts import Alert
from stanch.core.errors import IllegalTransition, NotFound, ValidationError
from stanch.core.series import SERVICE_WIDE

INHIBIT_FACTOR = 2.0
_FIELDS = ("service", "route", "kind", "client", "source")
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
WEEKDAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

MAX_MATCHERS: Final = 20  # per silence (and routes per window): more is a list, not a rule
MAX_PATTERN: Final = 200  # characters per glob
MAX_COMMENT: Final = 2000
MAX_SPAN_S: Final = 365 * DAY_S  # a rule that lasts longer is a config change, not a silence
MAX_LEAD_S: Final = 365 * DAY_S  # how far ahead a rule may be planned
MAX_RULES: Final = 1000  # silences and windows in force: every alert is checked against each
MAX_ENDED: Final = 200  # ended rules kept for the record (listing, the dashboard)

Status = Literal["pending", "active", "expired"]


@dataclass(frozen=True, slots=True)
class Matcher:
    """``field`` is service, route, kind, client, source, or ``label:<name>``; ``pattern`` a
    case-sensitive glob. ``equal=False`` matches the alerts the glob does *not* match (an
    alert without the label, or without any client matching, is one of them)."""

    field: str
    pattern: str
    equal: bool = True

    def __post_init__(self) -> None:
        if self.field not in _FIELDS and not self.field.startswith("label:"):
            raise ValidationError(
                f"matcher field {self.field!r} must be one of {', '.join(_FIELDS)} or label:NAME"
            )

    def matches(self, alert: Alert) -> bool:
        return self._glob_hits(alert) is self.equal

    def _glob_hits(self, alert: Alert) -> bool:
        if self.field == "client":
            return any(fnmatchcase(c, self.pattern) for c in alert.clients)
        if self.field.startswith("label:"):
            value = alert.labels.get(self.field.removeprefix("label:"))
            return value is not None and fnmatchcase(value, self.pattern)
        value = {
            "service": alert.service,
            "route": alert.route,
            "kind": alert.kind.value,
            "source": alert.source,
        }[self.field]
        return fnmatchcase(value, self.pattern)

    @property
    def op(self) -> str:
        return "=" if self.equal else "!="

    @property
    def narrows(self) -> bool:
        """Whether this matcher alone keeps some alerts out. Only a positive glob with a
        literal character does: a negative one still lets through everything else, and one
        made of wildcards alone (``*``, ``?*``, ``[!x]*``) matches nearly any value."""
        return self.equal and bool(_literal_part(self.pattern))

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.pattern}"


def _literal_part(pattern: str) -> str:
    """The characters of a glob outside its wildcards and ``[...]`` classes."""
    return re.sub(r"\[[^\]]*\]?|[*?]", "", pattern)


def parse_matcher(text: str) -> Matcher:
    """``field=glob`` or ``field!=glob`` (spaces around either side are ignored)."""
    field, sep, pattern = text.partition("=")
    if not sep:
        raise ValidationError(f"matcher {text.strip()[:80]!r} must read field=glob or field!=glob")
    equal = not field.endswith("!")
    return Matcher(field.removesuffix("!").strip(), pattern.strip(), equal)


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValidationError("a silence needs at least one matcher")
        if self.ends_at <= self.starts_at:
            raise ValidationError("a silence must end after it starts")

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, alert: Alert) -> bool:
        return all(m.matches(alert) for m in self.matchers)

    def status(self, now: float) -> Status:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned work on a service (or some of its routes): one-off, or weekly in UTC.

    One-off: ``starts_at``/``ends_at``. Weekly: ``weekdays`` (0 = Monday) with ``start_minute``
    and ``end_minute`` of the day (a window may cross midnight: end < start).
    """

    id: str
    service: str
    routes: tuple[str, ...] = ()
    starts_at: float | None = None
    ends_at: float | None = None
    weekdays: tuple[int, ...] = ()
    start_minute: int = 0
    end_minute: int = 0
    comment: str = ""
    created_by: str = ""

    def __post_init__(self) -> None:
        one_off = self.starts_at is not None and self.ends_at is not None
        if one_off == bool(self.weekdays):
            raise ValidationError(
                "a maintenance window is either one-off (starts_at, ends_at) "
                "or weekly (weekdays, start_minute, end_minute)"
            )
        if one_off and self.ends_at <= self.starts_at:  # type: ignore[operator]
            raise ValidationError("a maintenance window must end after it starts")
        if any(d not in range(7) for d in self.weekdays):
            raise ValidationError("weekdays are 0 (Monday) to 6 (Sunday)")
        if not (0 <= self.start_minute < 1440 and 0 <= self.end_minute < 1440):
            raise ValidationError("start_minute and end_minute are minutes of the day, 0..1439")

    @property
    def weekly(self) -> bool:
        return bool(self.weekdays)

    def active(self, now: float) -> bool:
        if self.starts_at is not None and self.ends_at is not None:
            return self.starts_at <= now < self.ends_at
        day = int(now // DAY_S)
        minute = int((now % DAY_S) // 60)
        weekday = (day + _EPOCH_WEEKDAY) % 7
        if self.start_minute <= self.end_minute:
            return weekday in self.weekdays and self.start_minute <= minute < self.end_minute
        # Crosses midnight: the late part belongs to today's window, the early part to
        # yesterday's.
        if minute >= self.start_minute:
            return weekday in self.weekdays
        return minute < self.end_minute and (weekday - 1) % 7 in self.weekdays

    def status(self, now: float) -> Status:
        """A weekly window between its slots is ``pending``: it never ends by itself."""
        if self.active(now):
            return "active"
        if self.ends_at is not None and now >= self.ends_at:
            return "expired"
        return "pending"

    def schedule(self) -> str:
        """``Mon, Thu 02:00-04:00 UTC`` for a weekly window, "" for a one-off one."""
        if not self.weekly:
            return ""
        days = ", ".join(WEEKDAY_NAMES[d] for d in sorted(set(self.weekdays)))
        return f"{days} {_hhmm(self.start_minute)}-{_hhmm(self.end_minute)} UTC"

    def covers(self, alert: Alert) -> bool:
        if alert.service != self.service:
            return False
        if not self.routes:
            return True
        return any(fnmatchcase(alert.route, g) for g in self.routes)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class Suppression:
    """One alert held back: why, by which rule (a silence, a window, or the fingerprint of
    the inhibiting alert), and what the alert was."""

    fingerprint: str
    reason: str
    rule: str
    at: float
    cause: str = ""  # "silence", "maintenance" or "inhibition"
    kind: str = ""
    service: str = ""
    route: str = ""


@dataclass(frozen=True, slots=True)
class Ended:
    """A silence or window no longer in force, kept for the record: when it ended, and who
    ended it ("" when it simply ran out)."""

    rule: Silence | MaintenanceWindow
    at: float
    by: str


# -- what a new rule must satisfy ------------------------------------------------------------


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


# -- inhibition ------------------------------------------------------------------------------


def relative_change(alert: Alert) -> float:
    """observed / expected, floored so zeros do not divide."""
    return max(alert.observed, 1e-9) / max(alert.expected, 1e-9)


def explains(service_alert: Alert, route_alert: Alert) -> bool:
    """Is ``route_alert`` an echo of ``service_alert`` (same kind, about the same change)?"""
    if service_alert.route != SERVICE_WIDE or route_alert.route == SERVICE_WIDE:
        return False
    if service_alert.service != route_alert.service or service_alert.kind != route_alert.kind:
        return False
    gap = abs(math.log(relative_change(route_alert)) - math.log(relative_change(service_alert)))
    return gap <= math.log(INHIBIT_FACTOR)


class NoiseControl:
    """The silences and maintenance windows in force, the ones that ended lately, and the
    inhibition rule."""

    def __init__(self) -> None:
        self.silences: dict[str, Silence] = {}
        self.windows: dict[str, MaintenanceWindow] = {}
        self.ended: list[Ended] = []  # oldest first, at most MAX_ENDED

    def check(self, alert: Alert, now: float, firing: Iterable[Alert] = ()) -> Suppression | None:
        """Why ``alert`` must not page right now, or None."""
        about = {"kind": alert.kind.value, "service": alert.service, "route": alert.route}
        for silence in self.silences.values():
            if silence.active(now) and silence.matches(alert):
                return Suppression(
                    alert.fingerprint,
                    f"silenced by {silence.id} ({silence.created_by}: "
                    f"{silence.comment or 'no comment'})",
                    silence.id,
                    now,
                    "silence",
                    **about,
                )
        for window in self.windows.values():
            if window.active(now) and window.covers(alert):
                return Suppression(
                    alert.fingerprint,
                    f"maintenance window {window.id}"
                    + (f" ({window.comment})" if window.comment else ""),
                    window.id,
                    now,
                    "maintenance",
                    **about,
                )
        for other in firing:
            if explains(other, alert):
                return Suppression(
                    alert.fingerprint,
                    f"inhibited by the service-wide {other.kind} on "
                    f"{other.service} ({other.explanation})",
                    other.fingerprint,
                    now,
                    "inhibition",
                    **about,
                )
        return None

    def add(self, rule: Silence | MaintenanceWindow) -> None:
        """Put a rule in force (checked by the caller: see ``check_new_*``)."""
        if rule.id in self.silences or rule.id in self.windows:
            raise IllegalTransition(f"{rule.id} exists already")
        if len(self.silences) + len(self.windows) >= MAX_RULES:
            raise IllegalTransition(
                f"{MAX_RULES} silences and maintenance windows are in force already: "
                "expire some first"
            )
        if isinstance(rule, Silence):
            self.silences[rule.id] = rule
        else:
            self.windows[rule.id] = rule

    def listed(
        self, now: float, *, expired: bool = False
    ) -> tuple[list[Silence], list[MaintenanceWindow]]:
        """The silences and the windows held, each by start then id: those not over at
        ``now``, or every one when ``expired`` (over, but not yet retired by a step)."""
        silences = sorted(
            (s for s in self.silences.values() if expired or s.status(now) != "expired"),
            key=lambda s: (s.starts_at, s.id),
        )
        windows = sorted(
            (w for w in self.windows.values() if expired or w.status(now) != "expired"),
            key=lambda w: (w.starts_at or 0.0, w.id),
        )
        return silences, windows

    def end_silence(self, silence_id: str, now: float, by: str) -> Ended:
        """Expire a silence now; alerts it held page at the next step if still firing."""
        silence = self.silences.pop(silence_id, None)
        if silence is None:
            raise self._missing(silence_id, Silence, "silence")
        return self._retire(silence, now, by)

    def end_window(self, window_id: str, now: float, by: str) -> Ended:
        window = self.windows.pop(window_id, None)
        if window is None:
            raise self._missing(window_id, MaintenanceWindow, "maintenance window")
        return self._retire(window, now, by)

    def _missing(
        self, rule_id: str, kind: type[Silence] | type[MaintenanceWindow], noun: str
    ) -> Exception:
        for ended in self.ended:
            if ended.rule.id == rule_id and isinstance(ended.rule, kind):
                return IllegalTransition(f"{noun} {rule_id} has ended already")
        return NotFound(f"no {noun} {rule_id} is in force")

    def _retire(self, rule: Silence | MaintenanceWindow, at: float, by: str) -> Ended:
        ended = Ended(rule, at, by)
        self.ended.append(ended)
        del self.ended[:-MAX_ENDED]
        return ended

    def expire(self, now: float) -> list[str]:
        """Retire silences and one-off windows that are over; returns their ids."""
        over: list[Silence | MaintenanceWindow] = [
            s for s in self.silences.values() if s.ends_at <= now
        ]
        over += [w for w in self.windows.values() if w.ends_at is not None and w.ends_at <= now]
        for rule in over:
            self.silences.pop(rule.id, None)
            self.windows.pop(rule.id, None)
            self._retire(rule, rule.ends_at if rule.ends_at is not None else now, "")
        return [rule.id for rule in over]

    def to_dict(self) -> dict[str, Any]:
        return {
            "silences": [silence_to_dict(s) for s in self.silences.values()],
            "windows": [window_to_dict(w) for w in self.windows.values()],
            "ended": [
                {
                    "type": "silence" if isinstance(e.rule, Silence) else "window",
                    "rule": _rule_to_dict(e.rule),
                    "at": e.at,
                    "by": e.by,
                }
                for e in self.ended
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseControl:
        """What :meth:`to_dict` saved, or what earlier versions saved (no "ended", matchers
        as ``[field, pattern]``)."""
        control = cls()
        for raw in data.get("silences", []):
            silence = silence_from_dict(raw)
            control.silences[silence.id] = silence
        for raw in data.get("windows", []):
            window = window_from_dict(raw)
            control.windows[window.id] = window
        for raw in data.get("ended", [])[-MAX_ENDED:]:
            rule_doc = raw["rule"]
            rule = (
                silence_from_dict(rule_doc)
                if raw.get("type") == "silence"
                else window_from_dict(rule_doc)
            )
            control.ended.append(Ended(rule, float(raw["at"]), str(raw.get("by", ""))))
        return control


# -- stored form -----------------------------------------------------------------------------


def silence_to_dict(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        # [field, pattern] for an equal matcher: the form earlier versions read
        "matchers": [
            [m.field, m.pattern] if m.equal else [m.field, m.pattern, m.op]
            for m in silence.matchers
        ],
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def silence_from_dict(raw: dict[str, Any]) -> Silence:
    matchers = []
    for item in raw["matchers"]:
        field, pattern, *rest = item
        matchers.append(Matcher(str(field), str(pattern), not rest or rest[0] != "!="))
    return Silence(
        raw["id"],
        tuple(matchers),
        float(raw["starts_at"]),
        float(raw["ends_at"]),
        raw.get("created_by", ""),
        raw.get("comment", ""),
    )


def window_to_dict(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "service": window.service,
        "routes": list(window.routes),
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "weekdays": list(window.weekdays),
        "start_minute": window.start_minute,
        "end_minute": window.end_minute,
        "comment": window.comment,
        "created_by": window.created_by,
    }


def window_from_dict(raw: dict[str, Any]) -> MaintenanceWindow:
    return MaintenanceWindow(
        raw["id"],
        raw["service"],
        tuple(raw.get("routes", ())),
        raw.get("starts_at"),
        raw.get("ends_at"),
        tuple(raw.get("weekdays", ())),
        int(raw.get("start_minute", 0)),
        int(raw.get("end_minute", 0)),
        raw.get("comment", ""),
        raw.get("created_by", ""),
    )


def _rule_to_dict(rule: Silence | MaintenanceWindow) -> dict[str, Any]:
    return silence_to_dict(rule) if isinstance(rule, Silence) else window_to_dict(rule)
