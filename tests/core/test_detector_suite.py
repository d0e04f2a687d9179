"""The detector suite: one contract run over every detector, then each new detector's behaviour.

The contract (after river's ``checks/``): deterministic for a seeded stream, causal (a point's
score never depends on later points), bounded state, scores in [0, 1], a warm-up before any
verdict, a snapshot that restores to the same future, no crash and no learning on a value that
is not a finite number, and an explanation a responder can read for every score.
"""

from __future__ import annotations

import doctest
import gc
import json
import math
import random
import tracemalloc
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.detectors import (
    BurnRateDetector,
    CusumDetector,
    Detector,
    EnsembleDetector,
    ErrorBurstDetector,
    RobustBaseline,
    SeasonalBaseline,
)
from stanch.core.detectors import batch as batch_module
from stanch.core.detectors import changepoint as changepoint_module
from stanch.core.detectors import ensemble as ensemble_module
from stanch.core.detectors import novelty as novelty_module
from stanch.core.detectors import seasonal as seasonal_module
from stanch.core.detectors.batch import BatchEnsemble
from stanch.core.detectors.burn_rate import BurnTier
from stanch.core.detectors.novelty import SequenceNovelty
from stanch.core.detectors.state import restore, snapshot

Point = tuple[float, float, float]  # (t, value, weight)
STEP = 300.0  # 5-minute points: the seasonal profile sees several days in a few thousand points


def metric_stream(seed: int, n: int) -> list[Point]:
    """A daily-seasonal metric with noise and a few spikes."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = 1.7e9 + i * STEP
        daily = 20.0 * math.sin(2 * math.pi * (t % 86400) / 86400)
        spike = 40.0 if rng.random() < 0.003 else 0.0
        out.append((t, 100.0 + daily + rng.gauss(0, 3) + spike, 1.0))
    return out


def error_stream(seed: int, n: int) -> list[Point]:
    """(errors, served) per point: a low error rate with occasional bursts."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        served = float(rng.randint(50, 150))
        p = 0.3 if rng.random() < 0.01 else 0.005
        errors = float(sum(rng.random() < p for _ in range(int(served))))
        out.append((float(i), errors, served))
    return out


DETECTORS: dict[str, tuple[Callable[[], Detector], Callable[[int, int], list[Point]]]] = {
    "ensemble": (EnsembleDetector, metric_stream),
    "seasonal": (SeasonalBaseline, metric_stream),
    "cusum": (CusumDetector, metric_stream),
    "robust": (lambda: RobustBaseline(half_life=200, warmup=50), metric_stream),
    "error_burst": (lambda: ErrorBurstDetector(warmup=50), error_stream),
    "burn_rate": (lambda: BurnRateDetector([BurnTier(120, 10, 14.4)]), error_stream),
}
NAMES = sorted(DETECTORS)


def run(detector: Detector, points: list[Point]) -> list[float]:
    return [detector.update(t, v, w).value for t, v, w in points]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_scores(name: str) -> None:
    """Two fresh detectors fed the same seeded stream agree exactly."""
    factory, stream = DETECTORS[name]
    points = stream(1, 2000)
    assert run(factory(), points) == run(factory(), points)


@pytest.mark.parametrize("name", NAMES)
def test_no_look_ahead(name: str) -> None:
    """Changing the future never changes a past score."""
    factory, stream = DETECTORS[name]
    head = stream(2, 1500)
    tail_a, tail_b = stream(3, 300), stream(4, 300)
    step = head[1][0] - head[0][0]

    def after_head(tail: list[Point]) -> list[Point]:
        return [(head[-1][0] + (i + 1) * step, v, w) for i, (_, v, w) in enumerate(tail)]

    a = run(factory(), head + after_head(tail_a))
    b = run(factory(), head + after_head(tail_b))
    assert a[: len(head)] == b[: len(head)]


@pytest.mark.parametrize("name", NAMES)
def test_scores_in_unit_interval_and_finite(name: str) -> None:
    """Every score is a finite number in [0, 1], and so are the explanation fields' types."""
    factory, stream = DETECTORS[name]
    detector = factory()
    for t, v, w in stream(5, 3000):
        s = detector.update(t, v, w)
        assert 0.0 <= s.value <= 1.0
        assert math.isfinite(s.value)


NOT_FINITE = {"nan": math.nan, "+inf": math.inf, "-inf": -math.inf}
NOT_FINITE_CASES = [(name, bad) for name in NAMES for bad in NOT_FINITE]


@pytest.mark.parametrize(("name", "bad"), NOT_FINITE_CASES)
def test_not_finite_is_no_data_and_does_not_poison_state(name: str, bad: str) -> None:
    """A NaN or infinite value, warming up or not, yields a no-data score, and later points
    score as if it never came: a corrupt sample neither pages nor shifts the baseline."""
    factory, stream = DETECTORS[name]
    points = stream(6, 1200)
    clean = run(factory(), points)
    with_gap = factory()
    scores = []
    for i, (t, v, w) in enumerate(points):
        if i in (0, 3, 700, 701):
            assert not with_gap.update(t, NOT_FINITE[bad], w).has_data
        scores.append(with_gap.update(t, v, w).value)
    assert scores == clean


@pytest.mark.parametrize("name", NAMES)
def test_weight_not_finite_or_positive_is_no_data(name: str) -> None:
    """The weight (samples, requests served) is input too: NaN, inf or 0 carries nothing."""
    factory, stream = DETECTORS[name]
    points = stream(6, 800)
    clean = run(factory(), points)
    detector = factory()
    scores = []
    for i, (t, v, w) in enumerate(points):
        if i == 500:
            for weight in (math.nan, math.inf, 0.0):
                assert not detector.update(t, v, weight).has_data
        scores.append(detector.update(t, v, w).value)
    assert scores == clean


@pytest.mark.parametrize("name", NAMES)
def test_explain_says_seen_vs_expected_for_every_score(name: str) -> None:
    """Every detector explains its scores: warming, no data, quiet and its highest one."""
    factory, stream = DETECTORS[name]
    detector = factory()
    if not hasattr(detector, "explain"):
        pytest.skip(f"{type(detector).__name__} has no explain() yet: its owner is adding it")
    explained: list[tuple[float, str]] = []
    for t, v, w in stream(10, 2000):
        score = detector.update(t, v, w)
        explained.append((score.value, detector.explain(score)))
    explained.append((0.0, detector.explain(detector.update(1e10, math.nan))))
    for _, text in explained:
        assert isinstance(text, str)
        assert text.strip()
    top_value, top_text = max(explained)
    assert top_value > 0.0
    assert " vs " in top_text or "burning" in top_text  # seen against expected (or budget)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    values=st.lists(
        st.one_of(st.floats(-1e9, 1e9), st.sampled_from([math.nan, math.inf, -math.inf, 0.0])),
        max_size=300,
    ),
)
def test_any_stream_scores_in_unit_interval(name: str, values: list[float]) -> None:
    """Whatever mix of numbers, NaN and infinities arrives, every score is in [0, 1] and has
    an explanation; infinities are no data. (Error counts are never negative, hence abs, nor
    more than the requests served.)"""
    counts = DETECTORS[name][1] is error_stream
    detector = DETECTORS[name][0]()
    for i, v in enumerate(values):
        # Errors among at least as many requests: more errors than requests is corrupt.
        value, weight = (abs(v), max(100.0, abs(v))) if counts else (v, 1.0)
        s = detector.update(1.7e9 + i * STEP, value, weight)
        assert 0.0 <= s.value <= 1.0
        assert s.has_data == math.isfinite(v)
        assert detector.explain(s).strip()


@pytest.mark.parametrize("name", NAMES)
def test_warm_up_gives_no_verdict(name: str) -> None:
    """The first points are judged against too little history: no alarm, marked warming."""
    factory, stream = DETECTORS[name]
    detector = factory()
    first = [detector.update(t, v, w) for t, v, w in stream(7, 10)]
    assert all(s.value < 0.5 for s in first)
    if name == "burn_rate":
        assert_burn_rate_warms_up_on_requests_served(factory)
    else:
        assert first[0].warming or not first[0].has_data


def assert_burn_rate_warms_up_on_requests_served(factory: Callable[[], Detector]) -> None:
    """Burn rate's warm-up is counted in requests, not points (a busy route is judged on its
    first point): until ``min_requests`` are served nothing is judged, even at a 50x burn;
    soon after, the same burn fires."""
    detector = factory()
    assert isinstance(detector, BurnRateDetector)
    per_point = 10.0
    scores = [detector.update(float(t), 5.0, per_point) for t in range(30)]
    young = int(detector.min_requests // per_point) - 1  # points served before min_requests
    assert young >= 3
    assert all(s.warming and s.value == 0.0 for s in scores[:young])
    assert any(not s.warming and s.value >= 0.5 for s in scores[young:])


@pytest.mark.parametrize("name", NAMES)
def test_bounded_memory(name: str) -> None:
    """Learned state does not grow with the series: 20x more points, same snapshot size."""
    factory, stream = DETECTORS[name]
    points = stream(8, 20_000)
    short, long = factory(), factory()
    run(short, points[:1000])
    run(long, points)
    size_short = len(json.dumps(snapshot(short)))
    size_long = len(json.dumps(snapshot(long)))
    assert size_long <= size_short * 1.5 + 200


@pytest.mark.parametrize("name", NAMES)
def test_bounded_memory_as_allocated(name: str) -> None:
    """The same check on what the detector holds in memory, not on its snapshot: after the
    first 3,000 points (over ten days at 5-minute points: every profile slot and weekday seen),
    17,000 more leave its traced allocations where they were."""
    factory, stream = DETECTORS[name]
    points = stream(8, 20_000)
    tracemalloc.start()
    try:
        detector = factory()
        for i in range(3_000):
            detector.update(*points[i])
        gc.collect()
        settled = tracemalloc.get_traced_memory()[0]
        for i in range(3_000, 20_000):
            detector.update(*points[i])
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - settled
    finally:
        tracemalloc.stop()
    assert grown <= 4_096, f"{name} kept {grown} more bytes after 17,000 more points"


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_restores_the_same_future(name: str) -> None:
    """A detector restored from a JSON snapshot scores the rest of the stream identically."""
    factory, stream = DETECTORS[name]
    points = stream(9, 2500)
    original = factory()
    run(original, points[:1500])
    copy = factory()
    restore(copy, json.loads(json.dumps(snapshot(original))))
    assert run(copy, points[1500:]) == run(original, points[1500:])


# --------------------------------------------------------------------------- behaviour


def calm(detector: Detector, n: int, seed: int = 0, sigma: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [detector.update(1.7e9 + i * STEP, 50 + rng.gauss(0, sigma)).value for i in range(n)]


def test_ensemble_is_quiet_on_noise_and_fires_once_on_a_spike() -> None:
    """Gaussian noise raises no alarm after warm-up; a spike does, and only at its first point."""
    d = EnsembleDetector()
    assert max(calm(d, 3000)[300:]) < 0.5
    t0 = 1.7e9 + 3000 * STEP
    first = d.update(t0, 90.0)
    rng = random.Random(5)
    after = [d.update(t0 + (i + 1) * STEP, 50 + rng.gauss(0, 2)).value for i in range(50)]
    assert first.value >= 0.5
    assert max(after) < 0.5  # the spike's echo in the longer scales is not news again


def test_ensemble_catches_a_modest_level_shift_through_its_long_scale() -> None:
    """A 1.5-sigma shift is invisible point by point but not over 24 points."""
    d = EnsembleDetector()
    calm(d, 3000, sigma=2.0)
    rng = random.Random(1)
    t0 = 1.7e9 + 3000 * STEP
    shifted = [d.update(t0 + i * STEP, 53 + rng.gauss(0, 2)) for i in range(60)]
    assert max(s.value for s in shifted) >= 0.5
    fired = next(s for s in shifted if s.value >= 0.5)
    assert "mean of last" in d.explain(fired) or "this point" in d.explain(fired)


def test_ensemble_learns_a_daily_square_wave_as_normal() -> None:
    """Edges of a daily on/off pattern are expected once the seasonal profile has seen days."""
    d = EnsembleDetector()
    scores = []
    for i in range(288 * 12):
        t = 1.7e9 + i * STEP
        on = 8 <= (t % 86400) / 3600 < 20
        scores.append(d.update(t, 80.0 if on else 20.0).value)
    assert max(scores[288 * 4 :]) < 0.5


def test_ensemble_flags_a_missing_daily_peak() -> None:
    """Staying low when the profile expects the daily high is an anomaly (seasonal baseline)."""
    d = EnsembleDetector()
    rng = random.Random(2)
    t = 1.7e9
    for i in range(288 * 10):
        t = 1.7e9 + i * STEP
        on = 8 <= (t % 86400) / 3600 < 20
        d.update(t, (80.0 if on else 20.0) + rng.gauss(0, 1))
    day = 1.7e9 + 288 * 10 * STEP
    scores = [d.update(day + i * STEP, 20.0 + rng.gauss(0, 1)) for i in range(288)]
    hit = [s for s in scores if s.value >= 0.5]
    assert hit
    assert "time of day" in d.explain(hit[0])


def test_seasonal_explains_against_the_time_of_day() -> None:
    """The explanation names the usual value for this time."""
    d = SeasonalBaseline(bins=24, warmup=48)
    for h in range(24 * 7):
        d.update(h * 3600.0, 100.0 if (h % 24) >= 12 else 10.0)
    s = d.update(24 * 7 * 3600.0 + 14 * 3600, 10.0)
    assert s.expected == pytest.approx(100.0, rel=0.05)
    assert "usual at this time of day" in d.explain(s)


def test_seasonal_profile_does_not_learn_a_flood_on_a_one_second_series() -> None:
    """A 4-minute flood (240 points at 1 s) neither becomes the rest of that slot's
    expectation nor "usual at this time" the next day: the profile learns once per visit of a
    slot, from a clipped mean, so sampling faster does not make it learn faster."""
    rng = random.Random(5)
    d = SeasonalBaseline()
    day = 86_400
    for t in range(day + 12 * 3600):  # a day and a half of 50 +- 2 req/s, 1 s points
        d.update(float(t), rng.gauss(50.0, 2.0))
    for t in range(day + 12 * 3600, day + 12 * 3600 + 240):
        d.update(float(t), 500.0)
    # Within the visit the flood moves the slot by at most rate x clip spreads (a few req/s);
    # learning per point, the slot expected about 450 req/s by the end of the flood.
    after_flood, z = d.residual_z(day + 12 * 3600 + 300.0, 50.0)
    assert after_flood == pytest.approx(50.0, abs=10.0)
    assert abs(z) < 3.0  # going back to normal is not a drop
    for t in range(day + 12 * 3600 + 240, 2 * day + 12 * 3600):
        d.update(float(t), rng.gauss(50.0, 2.0))
    next_day, z = d.residual_z(2 * day + 12 * 3600 + 120.0, 500.0)
    assert next_day == pytest.approx(50.0, abs=10.0)
    assert z > 6.0  # the same flood a day later is still a surprise


def test_seasonal_slot_starts_from_the_median_of_its_first_visit() -> None:
    """A slot never seen has no expectation until its first visit ends; then it holds the
    median of the visit's sub-block means, so a flood over the first three of ten minutes is not
    what the slot expects tomorrow."""
    d = SeasonalBaseline(warmup=10)
    for t in range(600):  # one 10-minute slot at 1 s: 3 minutes of flood, then 7 of normal
        d.update(float(t), 500.0 if t < 180 else 40.0)
        assert math.isnan(d.expected(float(t)))
    d.update(600.0, 40.0)  # the next slot starts: the first one is committed
    assert d.expected(86_400.0 + 5.0) == pytest.approx(40.0)


@pytest.mark.parametrize("step", [300.0, 3600.0])
def test_weekday_offset_learns_per_unit_of_time(step: float) -> None:
    """A weekday 40 above the others is learned as fast from hourly points as from 5-minute
    ones: the offset learns per unit of time, not per visit of a slot."""
    rng = random.Random(2)
    d = SeasonalBaseline()
    busy = 3  # the weekday index (t // DAY % 7) that runs 40 higher
    t = 0.0
    while t < 14 * 86_400:
        d.update(t, 100.0 + (40.0 if int(t // 86_400) % 7 == busy else 0.0) + rng.gauss(0, 2))
        t += step
    offsets = d._weekly
    others = [o for i, o in enumerate(offsets) if i != busy]
    assert offsets[busy] - sum(others) / len(others) > 25.0


def test_cusum_fires_once_per_shift() -> None:
    """After a change is reported the sums restart: a lasting shift is one alarm, not hundreds."""
    d = CusumDetector(warmup=50)
    rng = random.Random(3)
    for t in range(500):
        d.update(float(t), rng.gauss(10, 1))
    alarms = sum(d.update(float(t), rng.gauss(12, 1)).value >= 0.5 for t in range(500, 560))
    assert 1 <= alarms <= 6
    s = d.update(600.0, 30.0)
    assert "shift up" in d.explain(s)


def test_sequence_novelty_learns_a_path_and_flags_a_new_one() -> None:
    """A repeated level path becomes familiar (0); a step it never took scores 1 or a share."""
    n = SequenceNovelty(levels=8, order=2)
    path = [0.0, 7.0, 3.0, 5.0]
    scores = [n.update(v) for _ in range(20) for v in path]
    assert scores[-len(path) :] == [0.0] * len(path)
    assert n.update(7.0) == 1.0  # 3 -> 5 -> 7 never happened: both contexts seen, both new
    assert n.update(2.0) == 1.0  # a level never seen at all


@pytest.mark.parametrize(
    ("step", "steps"), [(STEP, 2500), (1.0, 2500), (60.0, 4320), (3600.0, 2500)]
)
def test_batch_ensemble_matches_scalar_ensemble(step: float, steps: int) -> None:
    """The numpy batch API gives the scalar detector's scores and learns the same profile, NaN
    gaps included, whether a daily-profile slot sees one point per visit (hourly), two (5 min),
    ten (60 s, three days: slots seen again) or hundreds (1 s)."""
    rng = np.random.default_rng(1)
    n = 5
    values = 50 + rng.normal(0, 3, (steps, n))
    values[:, 1] += 30 * np.sin(np.arange(steps) * 2 * np.pi / 288)
    values[1500:1530, 2] += 25
    values[rng.random((steps, n)) < 0.02] = np.nan
    batch = BatchEnsemble(n)
    scalars = [EnsembleDetector() for _ in range(n)]
    for i in range(steps):
        t = 1.7e9 + i * step
        got = batch.update(t, values[i])
        want = [d.update(t, float(values[i, j])).value for j, d in enumerate(scalars)]
        np.testing.assert_allclose(got, want, atol=1e-12)
    for j, d in enumerate(scalars):
        profile = d._seasonal  # the learned state, not only the scores, must agree
        np.testing.assert_allclose(batch.daily[j], profile._daily, atol=1e-9)
        np.testing.assert_allclose(batch.weekly_offsets[j], profile._weekly, atol=1e-9)


def test_batch_ensemble_treats_infinities_exactly_like_nan() -> None:
    """+-inf in a batch step is no data, as NaN is: same scores as a batch given NaN there, and
    as the scalar detector given the infinities."""
    rng = np.random.default_rng(3)
    steps, n = 600, 3
    values = 50 + rng.normal(0, 3, (steps, n))
    holes = rng.random((steps, n)) < 0.05
    with_nan = np.where(holes, np.nan, values)
    with_inf = np.where(holes, np.where(rng.random((steps, n)) < 0.5, np.inf, -np.inf), values)
    nan_batch, inf_batch = BatchEnsemble(n), BatchEnsemble(n)
    scalars = [EnsembleDetector() for _ in range(n)]
    for i in range(steps):
        t = 1.7e9 + i * STEP
        got = inf_batch.update(t, with_inf[i])
        np.testing.assert_array_equal(got, nan_batch.update(t, with_nan[i]))
        want = [d.update(t, float(with_inf[i, j])).value for j, d in enumerate(scalars)]
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.all(np.isfinite(inf_batch.level.level))


def test_batch_ensemble_state_fits_2kb_per_series() -> None:
    """The memory budget: at most 2 KB of learned state per series."""
    assert BatchEnsemble(100).nbytes() / 100 <= 2048


@pytest.mark.parametrize(
    "module", [ensemble_module, seasonal_module, changepoint_module, batch_module, novelty_module]
)
def test_module_doctests_pass(module: ModuleType) -> None:
    """Each detector's seeded docstring example stays true."""
    assert doctest.testmod(module).failed == 0
