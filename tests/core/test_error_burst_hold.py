"""A sustained error burst is one alert, not a flapping one; its end is still seen promptly.

On a 20 req/s route a steady 5% error ratio puts about five errors in the 5-point window,
right at the threshold. Before the hold, fifteen minutes of it resolved and re-fired the alert
three or four times (seeds 0-2)."""

from __future__ import annotations

import math
import random

import pytest

from stanch.core.alerts import AlertKind, AlertStatus
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.detectors.base import HOLD_SCORE
from stanch.core.detectors.poisson import ErrorBurstDetector
from stanch.core.detectors.state import restore, snapshot
from stanch.core.windows import Point

from .factories import make_point
from .test_detection import ROUTE, Step, binomial, drive, of_kind, poisson, steady


def noisy_burst(rate: float, ratio: float) -> Step:
    """Poisson traffic whose requests each fail with probability ``ratio``."""

    def step(t: int, rng: random.Random) -> tuple[Point, Point | None]:
        n = poisson(rng, rate)
        point = make_point(
            ROUTE,
            float(t),
            n,
            errors=binomial(rng, n, ratio),
            p95=0.1 * math.exp(rng.gauss(0, 0.1)),
        )
        return point, point

    return step


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_steady_burst_at_the_threshold_is_one_alert(seed: int) -> None:
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    phases = [(3600, steady(20.0)), (900, noisy_burst(20.0, 0.05)), (300, steady(20.0))]
    changes = drive(monitor, phases, seed=seed)
    fired = of_kind(changes, AlertKind.ERROR_BURST, AlertStatus.FIRING)
    resolved = of_kind(changes, AlertKind.ERROR_BURST, AlertStatus.RESOLVED)
    assert len(fired) == 1, [(a.status, a.updated_at) for a in changes]
    assert len(resolved) == 1
    assert 3600 <= fired[0].started_at < 3660
    ended = resolved[0].ended_at
    assert ended is not None
    # Over once 16 s of clean requests (1 in 10^7 at 5%) and then clear_after good points.
    assert 4500 < ended <= 4500 + 60


def feed(detector: ErrorBurstDetector, t0: int, points: list[tuple[float, float]]) -> list[float]:
    return [detector.update(float(t0 + i), e, s).value for i, (e, s) in enumerate(points)]


def test_the_hold_spans_dips_and_ends_on_clean_traffic() -> None:
    detector = ErrorBurstDetector(window=5, warmup=10)
    feed(detector, 0, [(0.0, 20.0)] * 100)
    burst = feed(detector, 100, [(2.0, 20.0)] * 20)  # 10%: crosses the threshold
    assert max(burst) >= 0.5
    baseline = detector.baseline
    # Two errors every other point (5%): the window alone would dip under the gate's off.
    dips = feed(detector, 120, [(2.0, 20.0), (0.0, 20.0)] * 20)
    assert min(dips) >= HOLD_SCORE
    assert detector.baseline == baseline  # nothing learned while the burst lasts
    after = feed(detector, 160, [(0.0, 20.0)] * 30)
    # 16.1 / (20 req x the 30-point window's ratio) clean points, then the plain score.
    over = next(i for i, v in enumerate(after) if v < HOLD_SCORE)
    assert 5 <= over <= 25
    assert all(v < 0.4 for v in after[over:])


def test_a_quiet_route_holds_until_its_errors_leave_the_longer_window() -> None:
    detector = ErrorBurstDetector(window=5, warmup=10, hold=30)
    feed(detector, 0, [(0.0, 2.0)] * 100)
    feed(detector, 100, [(2.0, 2.0)] * 5)  # everything fails for 5 points
    after = feed(detector, 105, [(0.0, 2.0)] * 40)
    held = [v == HOLD_SCORE for v in after]
    assert held[5]  # the short window is clean by now, the evidence of recovery is not
    assert not held[-1]
    assert held.index(False, 5) <= 30


def test_the_hold_survives_a_restart_and_is_explained() -> None:
    detector = ErrorBurstDetector(window=5, warmup=10)
    feed(detector, 0, [(0.0, 20.0)] * 100)
    feed(detector, 100, [(4.0, 20.0)] * 10)
    feed(detector, 110, [(0.0, 20.0)] * 5)  # the short window is clean: only the hold is left
    twin = ErrorBurstDetector(window=5, warmup=10)
    restore(twin, snapshot(detector))
    score = twin.update(115.0, 0.0, 20.0)
    assert score.value == HOLD_SCORE
    assert "not over yet" in twin.explain(score)
    assert detector.update(115.0, 0.0, 20.0).value == HOLD_SCORE
    cold = ErrorBurstDetector(window=5, warmup=10)
    restore(cold, {k: v for k, v in snapshot(detector).items() if k != "_bursting"})
    assert cold.update(116.0, 0.0, 20.0).value < 0.4  # an older snapshot: no hold


def test_hold_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="hold >= window"):
        ErrorBurstDetector(window=5, hold=4)
    with pytest.raises(ValueError, match="recover < threshold"):
        ErrorBurstDetector(threshold=3.0, recover=3.0)
