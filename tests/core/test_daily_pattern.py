"""A service that sleeps at night: what happens every day at this hour never pages.

Five days of 60 s points from a route that serves 20 req/s from 08:00 to 20:00 UTC and
nothing at night (or ramps up and down smoothly). The first morning and evening are new; from
the second day on the profile knows them, so nothing fires, while an outage at 14:00 on the
last day still does, within minutes.
"""

from __future__ import annotations

import math
import random

import pytest

from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.series import SeriesKey

from .factories import make_point

KEY = SeriesKey("api", "GET /a")
DAY = 86_400
T0 = 1_799_971_200  # a midnight UTC
STEP = 60
OUTAGE = (T0 + 4 * DAY + 14 * 3600, T0 + 4 * DAY + 14 * 3600 + 1800)


def square(hour: float) -> float:
    return 20.0 if 8 <= hour < 20 else 0.0


def ramp(hour: float) -> float:
    return max(0.0, 20.0 * math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour < 20 else 0.0


def replay(shape: object, outage: bool) -> list[Alert]:
    rng = random.Random(7)
    monitor = SeriesMonitor(KEY, DetectionConfig(interval_s=STEP, warmup_s=7200))
    changes: list[Alert] = []
    for i in range(5 * DAY // STEP):
        t = T0 + i * STEP
        rate = shape((t % DAY) / 3600)  # type: ignore[operator]
        if outage and OUTAGE[0] <= t < OUTAGE[1]:
            rate = 0.0
        mean = rate * STEP
        n = max(0, round(rng.gauss(mean, math.sqrt(mean)))) if mean else 0
        point = make_point(KEY, float(t), n, interval=float(STEP))
        changes += monitor.observe(point, point)
    return [c for c in changes if c.status is AlertStatus.FIRING]


@pytest.mark.parametrize("shape", [square, ramp])
def test_the_daily_pattern_pages_at_most_on_its_first_day(shape: object) -> None:
    fired = replay(shape, outage=False)
    assert [a for a in fired if a.started_at >= T0 + DAY] == []


@pytest.mark.parametrize("shape", [square, ramp])
def test_a_daytime_outage_still_pages(shape: object) -> None:
    fired = replay(shape, outage=True)
    later = [a for a in fired if a.started_at >= T0 + DAY]
    assert [a.kind for a in later] == [AlertKind.TRAFFIC_DROP]
    assert OUTAGE[0] <= later[0].started_at
    assert later[0].updated_at - OUTAGE[0] <= 5 * STEP


def test_a_quiet_route_dying_on_its_second_day_still_pages() -> None:
    """Once the daily profile knows the hour, the missing requests are counted against it: a
    2 req/s route silent at 06:00 on day 2 pages within minutes (the profile's verdict on each
    point alone must not throw the run's evidence away)."""
    rng = random.Random(3)
    step = 10.0
    monitor = SeriesMonitor(KEY, DetectionConfig(interval_s=step))
    dead = T0 + 30 * 3600
    fired: list[Alert] = []
    for i in range(int(31 * 3600 / step)):
        t = T0 + i * step
        n = 0 if t >= dead else max(0, round(rng.gauss(2 * step, math.sqrt(2 * step))))
        point = make_point(KEY, float(t), n, interval=step)
        fired += [a for a in monitor.observe(point, point) if a.status is AlertStatus.FIRING]
    late = [a for a in fired if a.started_at >= dead - 60]
    assert [a.kind for a in late] == [AlertKind.TRAFFIC_DROP]
    assert late[0].updated_at - dead <= 300
