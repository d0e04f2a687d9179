"""The rate signal reports the expectation its verdict was measured against.

On a first weekend (traffic at a quarter of the weekdays') the run of missing requests was
counted against the weekday profile while ``expected`` was the ensemble's level, already
sagging towards the weekend: the monitor's size check (half the expected traffic gone) then
passed and failed by turns: at 1 s points the first weekend raised 59 drop alerts (120 once
alerts were held an hour).
With the verdict and its expectation from the same baseline it fires once a day."""

from __future__ import annotations

import math

import numpy as np

from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.rate_signal import RateSignal
from stanch.core.series import SeriesKey

DAY = 86400.0
MONDAY = 1_800_057_600.0 - 5 * DAY  # a Monday, 00:00 UTC


def shape(t: float) -> float:
    hour = (t % DAY) / 3600.0
    return (
        20.0 + 80.0 * max(0.0, math.sin(math.pi * (hour - 6.0) / 16.0)) if 6 <= hour < 22 else 20.0
    )


def test_a_verdict_from_the_daily_profile_reports_the_profiles_expectation() -> None:
    monitor = SeriesMonitor(SeriesKey("api", "GET /a"), DetectionConfig(interval_s=60.0))
    signal: RateSignal = monitor._rate_signal
    rng = np.random.default_rng(3)
    t = MONDAY
    while t < MONDAY + 5 * DAY:  # a working week teaches the profile every hour
        signal.update(t, rng.poisson(shape(t) * 60.0) / 60.0, 60.0)
        t += 60.0
    from_profile = 0
    while t < MONDAY + 5 * DAY + 6 * 3600.0:  # Saturday: a quarter of the traffic
        reading = signal.update(t, rng.poisson(0.25 * shape(t) * 60.0) / 60.0, 60.0)
        usual, _ = signal.detector.usual_at(t)
        if reading.score.deviation < -5.0 and usual == usual:
            assert reading.score.expected == usual
            from_profile += 1
        t += 60.0
    assert from_profile > 100
