"""A level alert (traffic drop or spike, latency spike) lasts as long as its level does.

Before the hold, the ensemble's learning cleared these while the cause went on: a drop to 30%
of 5 req/s resolved after 4-5 minutes and fired again, a 3x surge of 50 req/s resolved after
11 minutes, p95 at 2x after 8-10 minutes (1 s points, seeds 0-1)."""

from __future__ import annotations

import math
import random

import pytest

from stanch.core.alerts import AlertKind, AlertStatus
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.level_hold import HOLD_MAX_S, LevelHold
from stanch.core.windows import Point

from .factories import make_point
from .test_detection import ROUTE, Step, binomial, drive, of_kind, poisson, steady


def slow(rate: float, factor: float) -> Step:
    def step(t: int, rng: random.Random) -> tuple[Point, Point | None]:
        n = poisson(rng, rate)
        p95 = 0.1 * factor * math.exp(rng.gauss(0.0, 0.1))
        point = make_point(ROUTE, float(t), n, errors=binomial(rng, n, 0.001), p95=p95)
        return point, point

    return step


CASES = {
    "drop to 30% of 5 req/s": (AlertKind.TRAFFIC_DROP, steady(5.0), steady(1.5)),
    "drop to 30% of 50 req/s": (AlertKind.TRAFFIC_DROP, steady(50.0), steady(15.0)),
    "surge to 3x of 50 req/s": (AlertKind.TRAFFIC_SPIKE, steady(50.0), steady(150.0)),
    "p95 at 2x": (AlertKind.LATENCY_SPIKE, steady(50.0), slow(50.0, 2.0)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_a_level_alert_lasts_as_long_as_its_level(case: str, seed: int) -> None:
    kind, before, during = CASES[case]
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(3600, before), (900, during), (120, before)], seed=seed)
    fired = of_kind(changes, kind, AlertStatus.FIRING)
    resolved = of_kind(changes, kind, AlertStatus.RESOLVED)
    assert {a.kind for a in changes} == {kind}  # and nothing else, on the way back either
    assert len(fired) == 1, [(a.kind, a.status, a.updated_at) for a in changes]
    assert fired[0].started_at < 3600 + 60
    assert len(resolved) == 1
    ended = resolved[0].ended_at
    assert ended is not None
    assert 4500 < ended <= 4500 + 60  # after the level comes back, not before


@pytest.mark.parametrize("rate", [5.0, 50.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_coming_back_from_a_surge_is_no_drop(rate: float, seed: int) -> None:
    """A quarter of an hour at 3x lifts the ensemble's expectation; the return to the usual
    level was a traffic-drop page every time (rate_signal's calm level)."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    phases = [(3600, steady(rate)), (900, steady(3 * rate)), (900, steady(rate))]
    # ... and a real outage after it is still one.
    changes = drive(monitor, [*phases, (120, steady(0.0))], seed=seed)
    drops = of_kind(changes, AlertKind.TRAFFIC_DROP, AlertStatus.FIRING)
    assert len(drops) == 1, [(a.kind, a.status, a.updated_at) for a in changes]
    assert drops[0].started_at >= 5400


def test_the_mark_is_half_the_change_an_alert_needs() -> None:
    drop = LevelHold(100.0, -1, 0.0, min_change=0.5)
    assert drop.mark == pytest.approx(75.0)
    assert drop.holds(1.0, 30.0)
    spike = LevelHold(100.0, 1, 0.0, min_change=0.5, min_points=1)
    assert spike.mark == pytest.approx(125.0)
    assert spike.holds(1.0, 130.0)
    assert not spike.holds(2.0, 120.0)


def test_a_quiet_rate_is_judged_on_enough_requests() -> None:
    """At 0.5 req/s the mark is 0.375 req/s: 27 points (ten requests) make the level, so
    one point with a request does not lift the hold and one without does not keep it."""
    hold = LevelHold(0.5, -1, 0.0, min_change=0.5, interval=1.0)
    assert all(hold.holds(float(t), 0.0) for t in range(1, 40))
    assert hold.holds(40.0, 1.0)  # one request among 27 points: still 0.04 req/s
    back = [hold.holds(float(t), 1.0 if t % 2 else 0.0) for t in range(41, 80)]
    assert back[0]
    assert not back[-1]


def test_the_hold_ends_after_an_hour_and_on_nonsense() -> None:
    hold = LevelHold(100.0, -1, 0.0, min_change=0.5)
    assert hold.holds(HOLD_MAX_S, 0.0)
    assert not hold.holds(HOLD_MAX_S + 1.0, 0.0)
    assert not hold.holds(1.0, math.nan)
    assert not LevelHold(0.0, -1, 0.0, min_change=0.5).holds(1.0, 0.0)
    assert not LevelHold(math.nan, 1, 0.0, min_change=0.5).holds(1.0, 5.0)
