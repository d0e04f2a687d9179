"""A service whose weekend runs at a quarter of its weekday traffic: weekends are not outages.

The audit's case: weekdays with a daily profile, weekends at 25 %, Poisson counts. With
additive weekday offsets the profile could not express "the same shape, a quarter as high", and
every weekend raised traffic drops (74 over three weeks at 10 s points). The rate signal now
learns weekdays as ratios: the first weekend is news, later ones are not, while a real drop to
10 %, on a weekday or during a weekend, still pages within minutes.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from stanch.core.alert_text import explain
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.detectors import EnsembleDetector, RobustBaseline, Score, SeasonalBaseline
from stanch.core.detectors.batch import BatchEnsemble
from stanch.core.detectors.seasonal import FACTOR_CLIP
from stanch.core.detectors.state import snapshot
from stanch.core.series import SeriesKey

from .factories import make_point

KEY = SeriesKey("api", "GET /a")
DAY = 86_400
T0 = 1_799_625_600  # Monday 2027-01-11, midnight UTC
STEP = 60


def weekday(t: float) -> int:
    """0 = Monday, as the calendar says (the detectors only need the days to repeat)."""
    return int((t - T0) // DAY) % 7


def traffic(t: float) -> float:
    """req/s: 20 at night, up to 100 in the afternoon on weekdays; a quarter on weekends."""
    hour = (t % DAY) / 3600
    base = 20.0 + 80.0 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour < 22 else 20.0
    return base * (0.25 if weekday(t) >= 5 else 1.0)


WEEKDAY_OUTAGE = (T0 + 9 * DAY + 14 * 3600, T0 + 9 * DAY + 15 * 3600)  # 2nd Wednesday 14:00
WEEKEND_OUTAGE = (T0 + 13 * DAY + 15 * 3600, T0 + 13 * DAY + 16 * 3600)  # 2nd Sunday 15:00


def replay(days: int, outages: tuple[tuple[int, int], ...]) -> list[Alert]:
    """Drop and spike alerts fired over ``days`` of 60 s points, traffic at 10 % in outages."""
    rng = np.random.default_rng(4)
    monitor = SeriesMonitor(KEY, DetectionConfig(interval_s=STEP))
    fired: list[Alert] = []
    for i in range(days * DAY // STEP):
        t = T0 + i * STEP
        rate = traffic(t) * (0.1 if any(a <= t < b for a, b in outages) else 1.0)
        point = make_point(
            KEY, float(t), int(rng.poisson(rate * STEP)), interval=STEP, p95=math.nan
        )
        fired += [a for a in monitor.observe(point, point) if a.status is AlertStatus.FIRING]
    return [a for a in fired if a.kind in (AlertKind.TRAFFIC_DROP, AlertKind.TRAFFIC_SPIKE)]


def test_a_weekend_at_a_quarter_pages_only_while_new_and_real_drops_still_page() -> None:
    """Two weeks and a day: after the first weekend, the only rate alerts are the two real
    outages (a weekday afternoon and a Sunday afternoon, traffic to 10 %), each within 5 min."""
    fired = replay(15, (WEEKDAY_OUTAGE, WEEKEND_OUTAGE))
    later = [a for a in fired if a.started_at >= T0 + 7 * DAY]
    assert [a.kind for a in later] == [AlertKind.TRAFFIC_DROP, AlertKind.TRAFFIC_DROP]
    for alert, (start, _) in zip(later, (WEEKDAY_OUTAGE, WEEKEND_OUTAGE), strict=True):
        assert start <= alert.started_at
        assert alert.updated_at - start <= 5 * STEP


def weekly_series(step: float, days: int, seed: int = 1) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(int(days * DAY / step)) * step
    rates = rng.poisson(np.array([traffic(t) for t in ts]) * step) / step
    return list(zip(ts.tolist(), rates.tolist(), strict=True))


def test_seasonal_ratio_learns_a_weekend_as_a_quarter_of_the_same_shape() -> None:
    """Three weeks of 5 min points: the weekend's expectation is the weekday's shape, scaled."""
    d = SeasonalBaseline(ratio=True)
    for t, v in weekly_series(300.0, 21):
        d.update(t, v)
    week = T0 + 21 * DAY  # a Monday again
    for hour in (3, 10, 15, 20):
        monday = d.expected(week + hour * 3600 + 150)
        saturday = d.expected(week + 5 * DAY + hour * 3600 + 150)
        assert saturday / monday == pytest.approx(0.25, rel=0.1)
        assert monday == pytest.approx(traffic(week + hour * 3600), rel=0.1)


def test_seasonal_additive_weekdays_cannot_express_the_quarter() -> None:
    """What the ratio fixes: the additive offsets (still the default for generic series) leave
    the weekend's expectation far above what it serves."""
    d = SeasonalBaseline()
    for t, v in weekly_series(300.0, 21):
        d.update(t, v)
    saturday = T0 + 26 * DAY + 15 * 3600 + 150
    assert d.expected(saturday) > 1.5 * traffic(saturday)


def test_a_day_long_outage_moves_its_weekday_by_at_most_the_clip() -> None:
    """A weekday learned over two weeks, then down to 10 % for all of its third occurrence:
    that weekday, against the others, moves by at most a factor of sqrt(FACTOR_CLIP)."""
    d = SeasonalBaseline(ratio=True)
    outage_day = T0 + 16 * DAY  # the third Wednesday
    relative = []  # Wednesday's factor over Tuesday's, before and after (the day is measured
    for t, v in weekly_series(300.0, 18):  # when Thursday's first visit is folded in)
        if t in (outage_day, outage_day + DAY + 3600):
            relative.append(d.factor(outage_day) / d.factor(outage_day - DAY))
        d.update(t, v * (0.1 if outage_day <= t < outage_day + DAY else 1.0))
    before, after = relative
    assert before == pytest.approx(1.0, abs=0.05)
    assert before / math.sqrt(FACTOR_CLIP) - 1e-9 <= after < before


def test_a_signed_series_keeps_additive_weekdays() -> None:
    """A ratio means nothing for a signal that goes negative: the first negative value turns
    the factors off and the offsets on."""
    d = SeasonalBaseline(ratio=True)
    assert d.multiplicative
    for t, v in weekly_series(300.0, 9):
        d.update(t, v)
    assert d.factor(T0 + 5 * DAY) < 0.5
    d.update(T0 + 9 * DAY, -1.0)
    assert not d.multiplicative
    assert d.factor(T0 + 5 * DAY) == 1.0


def test_the_engine_rate_signal_learns_ratios_and_generic_series_do_not() -> None:
    """Only the request rate is count-like; NAB-style generic series keep additive weekdays."""
    monitor = SeriesMonitor(KEY, DetectionConfig())
    assert isinstance(monitor.rate, EnsembleDetector)
    assert monitor.rate.weekly_ratio
    assert isinstance(monitor.latency, EnsembleDetector)
    assert not monitor.latency.weekly_ratio
    assert not EnsembleDetector().weekly_ratio


@pytest.mark.parametrize("step", [300.0, 3600.0])
def test_batch_matches_scalar_with_weekly_ratios(step: float) -> None:
    """The batch API learns the same factors and gives the same scores with ratios on, a series
    that goes negative (back to offsets) and gaps included; its state stays under 2 KB."""
    rng = np.random.default_rng(2)
    series = weekly_series(step, 10 if step == 300.0 else 40)
    n = 4
    values = np.array([v for _, v in series])[:, None] * np.array([1.0, 0.5, 2.0, 1.0])
    values = values + rng.normal(0, 1, values.shape) * np.array([0, 1, 0, 0])
    values[len(series) // 2 : len(series) // 2 + 5, 3] = -2.0
    values[rng.random(values.shape) < 0.02] = np.nan
    batch = BatchEnsemble(n, weekly_ratio=True)
    scalars = [EnsembleDetector(weekly_ratio=True) for _ in range(n)]
    for i, (t, _) in enumerate(series):
        got = batch.update(t, values[i])
        want = [d.update(t, float(values[i, j])).value for j, d in enumerate(scalars)]
        np.testing.assert_allclose(got, want, atol=1e-12)
    for j, d in enumerate(scalars):
        np.testing.assert_allclose(batch.factors[j], d._seasonal._factors, atol=1e-9)
        np.testing.assert_allclose(batch.daily[j], d._seasonal._daily, atol=1e-9)
    assert not np.isnan(batch.factors[0]).any()
    assert batch.signed.tolist() == [False, False, False, True]
    assert batch.nbytes() / n <= 2048


@pytest.mark.parametrize("t", [math.inf, -math.inf, math.nan])
def test_a_timestamp_that_is_not_finite_is_no_data(t: float) -> None:
    """t = inf or NaN is no data (nothing learned), never an exception, in every detector the
    rate and latency signals use and in the batch API."""
    rng = random.Random(5)
    detectors = [SeasonalBaseline(ratio=True), EnsembleDetector(), RobustBaseline()]
    for i in range(300):
        for d in detectors:
            d.update(60.0 * i, 50.0 + rng.gauss(0, 2))
    for d in detectors:
        before = repr(snapshot(d))  # repr: NaN (a slot or weekday not seen) equals itself
        assert not d.update(t, 50.0).has_data
        assert repr(snapshot(d)) == before
    ensemble = detectors[1]
    assert isinstance(ensemble, EnsembleDetector)
    assert all(math.isnan(x) for x in ensemble.usual_at(t))
    batch = BatchEnsemble(2)
    batch.update(0.0, np.array([1.0, 2.0]))
    assert batch.update(t, np.array([1.0, 2.0])).tolist() == [0.0, 0.0]
    assert batch.count.tolist() == [1, 1]


def test_a_spike_on_a_flat_series_explains_with_a_sane_z() -> None:
    """A flat series has a spread at its floor (near zero), so the z of its first spike is
    astronomical: the explanation says "beyond 1000", not z=+2.0e14."""
    d = EnsembleDetector()
    for i in range(400):
        d.update(60.0 * i, 100.0)
    score = d.update(60.0 * 400, 300.0)
    text = d.explain(score)
    assert "z>+1000" in text
    assert "e+" not in text
    robust = RobustBaseline(warmup=10)
    for i in range(50):
        robust.update(float(i), 100.0)
    assert "more than 1000 sigma above" in robust.explain(robust.update(50.0, 300.0))
    huge = Score(1.0, 300.0, 100.0, -2.2e14)
    point = make_point(KEY, 0.0, 300)
    line = explain(AlertKind.TRAFFIC_DROP, huge, KEY, point, (), d.explain(score))
    assert "(z<-1000)" in line
    assert "e+" not in line
