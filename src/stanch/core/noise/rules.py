"""The two kinds of rule: silences (matchers over a span of time) and maintenance windows
(a service, or some of its routes, one-off or weekly in UTC), and when each is in force.

They are values: what holds them is :mod:`stanch.core.noise.control`, what a new one must
satisfy :mod:`stanch.core.noise.checks`, how one is stored :mod:`stanch.core.noise.stored`.

>>> silence = Silence("S-1", (Matcher("route", "GET /search"),), 0.0, 60.0, "ops", "load test")
>>> silence.active(30.0), silence.active(61.0)
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final, Literal

from stanch.core.alerts import Alert
from stanch.core.errors import ValidationError
from stanch.core.noise.matchers import Matcher

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
WEEKDAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Status = Literal["pending", "active", "expired"]


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
