"""Noise control: silences, maintenance windows and inhibition.

A suppressed alert is never lost: it is recorded with the reason, and if it is still firing
when its silence or window ends, or when the alert that inhibited it clears, it goes on to
open or join an incident then (as Alertmanager does).

*Inhibition* here means a service-wide alert explains the per-route alerts of the same kind
whose relative change is about the same as the service's (within ``INHIBIT_FACTOR``): when the
whole service lost 80% of its traffic, six routes each losing 80% are one problem, not seven.
A route whose change is far larger than the service's (checkout failing 70% while the service
fails 7%) is the cause, not an echo, and is never inhibited.

>>> silence = Silence("S-1", (Matcher("route", "GET /search"),), 0.0, 60.0, "ops", "load test")
>>> silence.active(30.0), silence.active(61.0)
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from stanch.core.alerts import Alert
from stanch.core.errors import ValidationError
from stanch.core.series import SERVICE_WIDE

INHIBIT_FACTOR = 2.0
_FIELDS = ("service", "route", "kind", "client", "source")
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


@dataclass(frozen=True, slots=True)
class Matcher:
    """``field`` is service, route, kind, client, source, or ``label:<name>``; ``pattern`` a
    case-sensitive glob."""

    field: str
    pattern: str

    def __post_init__(self) -> None:
        if self.field not in _FIELDS and not self.field.startswith("label:"):
            raise ValidationError(
                f"matcher field {self.field!r} must be one of {', '.join(_FIELDS)} or label:NAME"
            )

    def matches(self, alert: Alert) -> bool:
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

    def covers(self, alert: Alert) -> bool:
        if alert.service != self.service:
            return False
        if not self.routes:
            return True
        return any(fnmatchcase(alert.route, g) for g in self.routes)


@dataclass(frozen=True, slots=True)
class Suppression:
    fingerprint: str
    reason: str
    rule: str
    at: float


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
    """The silences and maintenance windows in force, and the inhibition rule."""

    def __init__(self) -> None:
        self.silences: dict[str, Silence] = {}
        self.windows: dict[str, MaintenanceWindow] = {}

    def check(self, alert: Alert, now: float, firing: Iterable[Alert] = ()) -> Suppression | None:
        """Why ``alert`` must not page right now, or None."""
        for silence in self.silences.values():
            if silence.active(now) and silence.matches(alert):
                return Suppression(
                    alert.fingerprint,
                    f"silenced by {silence.id} ({silence.created_by}: "
                    f"{silence.comment or 'no comment'})",
                    silence.id,
                    now,
                )
        for window in self.windows.values():
            if window.active(now) and window.covers(alert):
                return Suppression(
                    alert.fingerprint,
                    f"maintenance window {window.id}"
                    + (f" ({window.comment})" if window.comment else ""),
                    window.id,
                    now,
                )
        for other in firing:
            if explains(other, alert):
                return Suppression(
                    alert.fingerprint,
                    f"inhibited by the service-wide {other.kind} on "
                    f"{other.service} ({other.explanation})",
                    other.fingerprint,
                    now,
                )
        return None

    def expire(self, now: float) -> list[str]:
        """Forget silences and one-off windows that are over; returns their ids."""
        gone = [k for k, s in self.silences.items() if s.ends_at <= now]
        gone += [k for k, w in self.windows.items() if w.ends_at is not None and w.ends_at <= now]
        for key in gone:
            self.silences.pop(key, None)
            self.windows.pop(key, None)
        return gone

    def to_dict(self) -> dict[str, Any]:
        return {
            "silences": [
                {
                    "id": s.id,
                    "matchers": [[m.field, m.pattern] for m in s.matchers],
                    "starts_at": s.starts_at,
                    "ends_at": s.ends_at,
                    "created_by": s.created_by,
                    "comment": s.comment,
                }
                for s in self.silences.values()
            ],
            "windows": [
                {
                    "id": w.id,
                    "service": w.service,
                    "routes": list(w.routes),
                    "starts_at": w.starts_at,
                    "ends_at": w.ends_at,
                    "weekdays": list(w.weekdays),
                    "start_minute": w.start_minute,
                    "end_minute": w.end_minute,
                    "comment": w.comment,
                }
                for w in self.windows.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseControl:
        control = cls()
        for raw in data.get("silences", []):
            matchers = tuple(Matcher(f, p) for f, p in raw["matchers"])
            silence = Silence(
                raw["id"],
                matchers,
                float(raw["starts_at"]),
                float(raw["ends_at"]),
                raw.get("created_by", ""),
                raw.get("comment", ""),
            )
            control.silences[silence.id] = silence
        for raw in data.get("windows", []):
            window = MaintenanceWindow(
                raw["id"],
                raw["service"],
                tuple(raw.get("routes", ())),
                raw.get("starts_at"),
                raw.get("ends_at"),
                tuple(raw.get("weekdays", ())),
                int(raw.get("start_minute", 0)),
                int(raw.get("end_minute", 0)),
                raw.get("comment", ""),
            )
            control.windows[window.id] = window
        return control
