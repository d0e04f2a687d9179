"""Streaming detectors: one contract for all of them, then each one's behaviour."""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.detectors import (
    BurnRateDetector,
    Detector,
    Direction,
    ErrorBurstDetector,
    RobustBaseline,
    Score,
)
from stanch.core.detectors.base import NO_DATA, squash
from stanch.core.detectors.burn_rate import BurnTier
from stanch.core.detectors.poisson import poisson_sf_log10
from stanch.core.detectors.state import restore, snapshot

# --------------------------------------------------------------------------- helpers

Sample = tuple[int, int]  # (errors, served) in one point


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: Knuth for small means, a rounded normal for large ones."""
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass(frozen=True)
class Case:
    """A detector factory and how an (errors, served) sample becomes its (value, weight)."""

    name: str
    make: Callable[[], Detector]
    signal: Callable[[int, int], tuple[float, float]]

    def feed(self, detector: Detector, samples: Sequence[Sample], t0: int = 0) -> list[Score]:
        out = []
        for i, (errors, served) in enumerate(samples):
            value, weight = self.signal(errors, served)
            out.append(detector.update(float(t0 + i), value, weight))
        return out


def _rate(errors: int, served: int) -> tuple[float, float]:
    return float(served), 1.0


def _latency(errors: int, served: int) -> tuple[float, float]:
    return 0.05 + errors / 10.0, 1.0


def _counts(errors: int, served: int) -> tuple[float, float]:
    return float(errors), float(served)


CASES = [
    Case("robust", lambda: RobustBaseline(half_life=20, warmup=10), _rate),
    Case(
        "robust-count-noise",
        lambda: RobustBaseline(half_life=20, warmup=10, count_noise=True, min_relative_change=0.2),
        _rate,
    ),
    Case(
        "robust-log-up",
        lambda: RobustBaseline(half_life=20, warmup=10, log=True, direction=Direction.UP),
        _latency,
    ),
    Case(
        "robust-down",
        lambda: RobustBaseline(half_life=20, warmup=10, direction=Direction.DOWN),
        _rate,
    ),
    Case("error-burst", lambda: ErrorBurstDetector(window=5, warmup=10), _counts),
    Case(
        "burn-rate",
        lambda: BurnRateDetector(
            [BurnTier(60, 5, 14.4), BurnTier(120, 20, 1.0, pages=False)], min_requests=10
        ),
        _counts,
    ),
]
CASE_IDS = [c.name for c in CASES]


def samples_from(seed: int, n: int) -> list[Sample]:
    """Traffic with a burst of errors and a lull in the middle: exercises every branch."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        served = poisson(rng, 20)
        if n // 2 <= i < n // 2 + 10:
            errors = served // 2  # burst
        elif n // 2 + 10 <= i < n // 2 + 15:
            served = errors = 0  # lull
        else:
            errors = sum(rng.random() < 0.01 for _ in range(served))
        out.append((errors, served))
    return out


sample_lists = st.lists(
    st.integers(0, 200).flatmap(lambda s: st.tuples(st.integers(0, s), st.just(s))),
    min_size=1,
    max_size=120,
)


def footprint(obj: object) -> int:
    """Total length of every container reachable through ``__slots__`` (recursively)."""
    total = 0
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            value = getattr(obj, name, None)
            if isinstance(value, list | dict | set | deque | tuple | frozenset):
                total += len(value)
            elif type(value).__module__.startswith("stanch.") and not isinstance(value, Enum):
                total += footprint(value)
    return total


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@settings(max_examples=30, deadline=None)
@given(samples=sample_lists)
def test_contract_scores_in_unit_interval(case: Case, samples: list[Sample]) -> None:
    """Every score value is a number in [0, 1], whatever the (finite, plausible) input."""
    for score in case.feed(case.make(), samples):
        assert 0.0 <= score.value <= 1.0


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_contract_deterministic(case: Case) -> None:
    """Two detectors fed the same sequence return identical scores."""
    samples = samples_from(3, 300)
    assert case.feed(case.make(), samples) == case.feed(case.make(), samples)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@settings(max_examples=15, deadline=None)
@given(prefix=sample_lists, tail_a=sample_lists, tail_b=sample_lists)
def test_contract_no_look_ahead(
    case: Case, prefix: list[Sample], tail_a: list[Sample], tail_b: list[Sample]
) -> None:
    """Scores of a prefix do not depend on what is fed afterwards (or whether anything is)."""
    alone = case.feed(case.make(), prefix)
    with_a = case.feed(case.make(), prefix + tail_a)
    with_b = case.feed(case.make(), prefix + tail_b)
    n = len(prefix)
    assert with_a[:n] == alone
    assert with_b[:n] == alone


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_contract_warm_up_scores_zero(case: Case) -> None:
    """The first point is warming, and every warming score has value 0 (even on a burst)."""
    detector = case.make()
    first = case.feed(detector, [(1, 1)])[0]
    assert first.warming
    assert first.value == 0.0
    scores = case.feed(detector, [(10, 10), (0, 1000), (10, 10)] * 3, t0=1)
    assert all(s.value == 0.0 for s in scores if s.warming)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_contract_warm_up_ends(case: Case) -> None:
    """After enough steady history a detector is no longer warming."""
    scores = case.feed(case.make(), samples_from(5, 100)[:40])
    assert not scores[-1].warming


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_contract_nan_is_no_data_and_not_learned(case: Case) -> None:
    """A NaN value returns has_data=False and leaves the detector's later scores unchanged."""
    samples = samples_from(11, 80)
    plain = case.make()
    dirty = case.make()
    expected = case.feed(plain, samples)
    got = []
    for i, (errors, served) in enumerate(samples):
        nan_score = dirty.update(float(i), math.nan, 1.0)
        assert not nan_score.has_data
        assert nan_score.value == 0.0
        value, weight = case.signal(errors, served)
        got.append(dirty.update(float(i), value, weight))
    assert got == expected


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=CASE_IDS,
)
def test_contract_zero_weight_is_no_data(case: Case) -> None:
    """A point over zero requests (weight 0) returns has_data=False, also after traffic."""
    detector = case.make()
    assert not detector.update(0.0, 0.0, 0.0).has_data
    case.feed(detector, samples_from(2, 100)[:30], t0=1)
    assert not detector.update(31.0, 0.0, 0.0).has_data


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_contract_bounded_memory(case: Case) -> None:
    """State does not grow with the series: no __dict__, same container sizes at 1k and 100k."""
    detector = case.make()
    assert not hasattr(detector, "__dict__")
    rng = random.Random(1)
    table = [(poisson(rng, 3), 20 + poisson(rng, 5)) for _ in range(997)]
    update = detector.update
    signal = case.signal
    for i in range(1_000):
        update(float(i), *signal(*table[i % 997]))
    size = footprint(detector)
    for i in range(1_000, 100_000):
        update(float(i), *signal(*table[i % 997]))
    assert footprint(detector) == size


def test_no_data_constant() -> None:
    """NO_DATA has value 0 and has_data False, so hysteresis ignores it."""
    assert NO_DATA.value == 0.0
    assert not NO_DATA.has_data
    assert not NO_DATA.warming


# --------------------------------------------------------------------------- squash


@pytest.mark.parametrize(("surprise", "expected"), [(-3.0, 0.0), (0.0, 0.0), (6.0, 0.5)])
def test_squash_fixed_points(surprise: float, expected: float) -> None:
    """Non-positive surprise scores 0; surprise equal to the threshold scores exactly 0.5."""
    assert squash(surprise, 6.0) == expected


@given(
    a=st.floats(0, 1e12, allow_nan=False),
    b=st.floats(0, 1e12, allow_nan=False),
    threshold=st.floats(0.1, 100),
)
def test_squash_monotone_and_below_one(a: float, b: float, threshold: float) -> None:
    """squash is non-decreasing in the surprise and stays within [0, 1]."""
    lo, hi = sorted((a, b))
    assert 0.0 <= squash(lo, threshold) <= squash(hi, threshold) <= 1.0


def test_squash_of_infinite_surprise_is_one() -> None:
    """An infinitely surprising point scores 1.0, not NaN."""
    assert squash(math.inf, 6.0) == 1.0


# --------------------------------------------------------------------------- robust baseline


def test_robust_rejects_bad_parameters() -> None:
    """Non-positive half-life, warm-up, threshold or clip are refused."""
    for kwargs in ({"half_life": 0}, {"warmup": 0}, {"threshold": 0}, {"clip": 0}):
        with pytest.raises(ValueError, match="positive"):
            RobustBaseline(**kwargs)  # type: ignore[arg-type]


def test_robust_flags_ten_x_spike_but_not_gaussian_noise() -> None:
    """Seeded N(100, 5) noise never crosses 0.5; a 10x value does."""
    rng = random.Random(42)
    detector = RobustBaseline(half_life=300, warmup=60, threshold=6.0)
    scores = [detector.update(float(t), rng.gauss(100.0, 5.0)) for t in range(3000)]
    assert max(s.value for s in scores) < 0.5
    assert detector.level == pytest.approx(100.0, abs=2.0)
    spike = detector.update(3000.0, 1000.0)
    assert spike.value > 0.5
    assert spike.deviation > 6.0
    assert spike.expected == pytest.approx(100.0, abs=2.0)
    assert spike.observed == 1000.0


def test_robust_direction_up_ignores_drops() -> None:
    """Direction.UP scores a drop as 0 and a rise as surprising; DOWN does the opposite."""
    rng = random.Random(1)
    up = RobustBaseline(half_life=100, warmup=30, direction=Direction.UP)
    down = RobustBaseline(half_life=100, warmup=30, direction=Direction.DOWN)
    for t in range(300):
        x = rng.gauss(100.0, 5.0)
        up.update(float(t), x)
        down.update(float(t), x)
    assert up.update(300.0, 0.0).value == 0.0
    assert down.update(300.0, 0.0).value > 0.5
    assert up.update(301.0, 300.0).value > 0.5
    assert down.update(301.0, 300.0).value == 0.0


def test_robust_count_noise_quiet_drop_unremarkable_busy_drop_flagged() -> None:
    """With count_noise, 2 req/s -> 0 is ordinary while 400 req/s -> 0 is flagged."""
    rng = random.Random(9)
    quiet = RobustBaseline(half_life=300, warmup=60, count_noise=True, threshold=4.0)
    busy = RobustBaseline(half_life=300, warmup=60, count_noise=True, threshold=4.0)
    for t in range(600):
        quiet.update(float(t), float(poisson(rng, 2.0)))
        busy.update(float(t), float(poisson(rng, 400.0)))
    assert quiet.update(600.0, 0.0).value < 0.5
    assert busy.update(600.0, 0.0).value > 0.5


def test_robust_count_noise_is_what_makes_a_flat_quiet_series_tolerant() -> None:
    """A perfectly flat 2/s series dropping to 0 is extreme without count_noise, ordinary with."""
    plain = RobustBaseline(half_life=100, warmup=20)
    noisy = RobustBaseline(half_life=100, warmup=20, count_noise=True)
    for t in range(200):
        plain.update(float(t), 2.0)
        noisy.update(float(t), 2.0)
    assert plain.update(200.0, 0.0).value > 0.99
    assert noisy.update(200.0, 0.0).value < 0.5


def test_robust_clipping_keeps_level_from_chasing_a_sustained_anomaly() -> None:
    """A sustained 10x shift keeps scoring >= 0.5 for 100 points; the level barely moves."""
    rng = random.Random(5)
    detector = RobustBaseline(half_life=300, warmup=60)
    for t in range(1000):
        detector.update(float(t), rng.gauss(100.0, 5.0))
    scores = [detector.update(float(1000 + t), 1000.0) for t in range(100)]
    assert all(s.value >= 0.5 for s in scores)
    assert detector.level < 150.0


def test_robust_clipping_beats_an_unclipped_baseline() -> None:
    """With a huge clip the level chases the anomaly; with the default it stays put."""
    levels = {}
    for clip in (3.0, 1e9):
        rng = random.Random(5)
        detector = RobustBaseline(half_life=50, warmup=30, clip=clip)
        for t in range(300):
            detector.update(float(t), rng.gauss(100.0, 5.0))
        for t in range(30):
            detector.update(float(300 + t), 1000.0)
        levels[clip] = detector.level
    assert levels[3.0] < 150.0
    assert levels[1e9] > 300.0


def test_robust_log_scale_expected_in_signal_units() -> None:
    """With log=True, `expected` (and `level`) are reported back in the signal's own unit."""
    detector = RobustBaseline(half_life=50, warmup=10, log=True)
    for t in range(100):
        detector.update(float(t), 0.2)
    score = detector.update(100.0, 0.2)
    assert score.expected == pytest.approx(0.2)
    assert detector.level == pytest.approx(0.2)


def test_robust_min_relative_change_silences_small_moves() -> None:
    """A statistically surprising but small relative change scores 0 with min_relative_change."""
    strict = RobustBaseline(half_life=100, warmup=20)
    lenient = RobustBaseline(half_life=100, warmup=20, min_relative_change=0.5)
    for t in range(200):
        x = 100.0 + (t % 2) * 0.1
        strict.update(float(t), x)
        lenient.update(float(t), x)
    assert strict.update(200.0, 110.0).value > 0.5
    assert lenient.update(200.0, 110.0).value == 0.0


def test_robust_huge_finite_value_scores_one() -> None:
    """A finite but enormous value scores within [0, 1] (as the most surprising possible)."""
    detector = RobustBaseline(warmup=3)
    for t in range(10):
        detector.update(float(t), 1.0)
    assert detector.update(10.0, 1e300).value == 1.0


# --------------------------------------------------------------------------- poisson tail


def _brute_sf_log10(k: int, lam: float) -> float:
    if k <= 0:
        return 0.0
    logs = [-lam + j * math.log(lam) - math.lgamma(j + 1) for j in range(k, k + 400)]
    top = max(logs)
    return (top + math.log(math.fsum(math.exp(x - top) for x in logs))) / math.log(10)


@settings(max_examples=200)
@given(k=st.integers(0, 60), lam=st.floats(0.01, 60.0))
def test_poisson_sf_matches_brute_force(k: int, lam: float) -> None:
    """log10 P(X >= k) agrees with a direct sum of the Poisson pmf for small k and lam."""
    assert poisson_sf_log10(k, lam) == pytest.approx(_brute_sf_log10(k, lam), abs=1e-6)


@given(k=st.integers(0, 200), lam=st.floats(0.01, 200.0))
def test_poisson_sf_is_a_log_probability_decreasing_in_k(k: int, lam: float) -> None:
    """The tail is <= 0 in log10 and never increases with k."""
    here = poisson_sf_log10(k, lam)
    assert here <= 1e-12
    assert poisson_sf_log10(k + 1, lam) <= here + 1e-9


def test_poisson_sf_edges() -> None:
    """k <= 0 is certain (log 0); any k > 0 with lam <= 0 is impossible (-inf)."""
    assert poisson_sf_log10(0, 3.0) == 0.0
    assert poisson_sf_log10(-2, 3.0) == 0.0
    assert poisson_sf_log10(1, 0.0) == -math.inf


@pytest.mark.parametrize(
    ("k", "lam"), [(10**6, 10.0), (10**5, 1.0e-3), (10**5, 10**5 - 100.0), (10**4, 2.0e4)]
)
def test_poisson_sf_finite_for_large_k(k: int, lam: float) -> None:
    """Large counts give a finite log probability instead of overflow or underflow."""
    value = poisson_sf_log10(k, lam)
    assert math.isfinite(value)
    assert value <= 0.0


def test_poisson_sf_large_k_close_to_normal_approximation() -> None:
    """Near the mean of a large Poisson the tail matches the normal approximation."""
    k, lam = 100_000, 99_900.0
    z = (k - 0.5 - lam) / math.sqrt(lam)
    normal = math.log10(0.5 * math.erfc(z / math.sqrt(2)))
    assert poisson_sf_log10(k, lam) == pytest.approx(normal, abs=0.02)
    assert poisson_sf_log10(10**6, 10.0) < -1e6


# --------------------------------------------------------------------------- error bursts


def test_error_burst_rejects_bad_parameters() -> None:
    """Non-positive window, half-life, warm-up or threshold are refused."""
    for kwargs in ({"window": 0}, {"half_life": 0}, {"warmup": 0}, {"threshold": 0}):
        with pytest.raises(ValueError, match="positive"):
            ErrorBurstDetector(**kwargs)  # type: ignore[arg-type]


def test_error_burst_ignores_single_failures_on_a_quiet_route() -> None:
    """At 2 req/s a lone failed request now and then never scores 0.5."""
    rng = random.Random(4)
    detector = ErrorBurstDetector()
    scores = []
    for t in range(2000):
        served = poisson(rng, 2.0)
        errors = 1 if served and t % 37 == 0 else 0
        if served:
            scores.append(detector.update(float(t), float(errors), float(served)))
    assert max(s.value for s in scores) < 0.5
    assert detector.baseline < 0.05


def _clean_then_burst(detector: ErrorBurstDetector, burst_points: int) -> list[Score]:
    rng = random.Random(8)
    for t in range(600):
        errors = sum(rng.random() < 0.001 for _ in range(20))
        detector.update(float(t), float(errors), 20.0)
    return [detector.update(float(600 + t), 6.0, 20.0) for t in range(burst_points)]


def test_error_burst_flags_sustained_30_percent_within_three_points() -> None:
    """A sustained 30% error ratio on a 20 req/s route crosses 0.5 within 3 points."""
    scores = _clean_then_burst(ErrorBurstDetector(), 3)
    assert any(s.value >= 0.5 for s in scores)
    assert scores[-1].observed == pytest.approx(0.3, abs=0.15)


def test_error_burst_does_not_learn_the_burst() -> None:
    """Through 200 points of burst the baseline stays low and the score stays high."""
    detector = ErrorBurstDetector()
    scores = _clean_then_burst(detector, 200)
    assert all(s.value >= 0.5 for s in scores[3:])
    assert detector.baseline < 0.005
    assert scores[-1].expected == pytest.approx(max(detector.baseline, 0.002))
    # Recovery: once the window has rolled past the burst, the score falls back to zero.
    after = [detector.update(float(900 + t), 0.0, 20.0) for t in range(10)]
    assert after[-1].value == 0.0


def test_error_burst_effect_size_floor() -> None:
    """Few errors (< min_errors) or a tiny ratio (< min_ratio) never raise the score."""
    detector = ErrorBurstDetector(window=5, warmup=10)
    for t in range(100):
        detector.update(float(t), 0.0, 1000.0)
    # 20 errors among 5000 served (0.4% < 3%): statistically surprising, but harmless.
    assert detector.update(100.0, 20.0, 1000.0).value == 0.0
    fresh = ErrorBurstDetector(window=5, warmup=10)
    for t in range(100):
        fresh.update(float(t), 0.0, 5.0)
    assert fresh.update(100.0, 2.0, 5.0).value == 0.0  # 2 < min_errors


def test_error_burst_refuses_a_zero_p_floor() -> None:
    """p_floor=0 would make any error on a never-failing route infinitely surprising."""
    with pytest.raises(ValueError, match="p_floor"):
        ErrorBurstDetector(window=5, warmup=10, p_floor=0.0)


def test_error_burst_with_a_tiny_floor_scores_a_burst_in_range() -> None:
    """With a tiny p_floor a burst on a never-failing route scores in [0.5, 1]."""
    detector = ErrorBurstDetector(window=5, warmup=10, p_floor=1e-12)
    for t in range(50):
        detector.update(float(t), 0.0, 20.0)
    score = detector.update(50.0, 10.0, 20.0)
    assert 0.5 <= score.value <= 1.0


# --------------------------------------------------------------------------- burn rate


def test_burn_rate_rejects_bad_parameters() -> None:
    """Objective outside (0, 1), inconsistent windows or no tiers at all are refused."""
    with pytest.raises(ValueError, match="objective"):
        BurnRateDetector(objective=1.0)
    with pytest.raises(ValueError, match="short_points"):
        BurnTier(long_points=5, short_points=10, threshold=14.4)
    with pytest.raises(ValueError, match="short_points"):
        BurnTier(long_points=5, short_points=0, threshold=14.4)
    with pytest.raises(ValueError, match="threshold"):
        BurnTier(long_points=5, short_points=1, threshold=0.0)
    with pytest.raises(ValueError, match="tier"):
        BurnRateDetector([])


def _burn() -> BurnRateDetector:
    return BurnRateDetector([BurnTier(60, 5, 14.4)], objective=0.99, min_requests=10)


def test_burn_rate_fires_when_both_windows_burn() -> None:
    """A 50% error ratio sustained over the long window burns both windows: score > 0.5."""
    detector = _burn()
    for t in range(60):
        detector.update(float(t), 0.0, 10.0)
    score = None
    for t in range(60, 120):
        score = detector.update(float(t), 5.0, 10.0)
    assert score is not None
    assert score.value > 0.5
    assert score.observed == pytest.approx(50.0)
    assert score.expected == 14.4
    assert detector.burns()[0] == pytest.approx((50.0, 50.0))


def test_burn_rate_quiet_when_only_the_long_window_burns() -> None:
    """Once the short window is clean again the alert can clear, though the long one burns."""
    detector = _burn()
    for t in range(60):
        detector.update(float(t), 5.0, 10.0)
    score = None
    for t in range(60, 65):
        score = detector.update(float(t), 0.0, 10.0)
    assert score is not None
    long_burn, short_burn = detector.burns()[0]
    assert long_burn > 14.4
    assert short_burn == 0.0
    assert score.value < 0.5


def test_burn_rate_quiet_when_only_the_short_window_burns() -> None:
    """A brief burst after a long clean stretch burns the short window only: no page."""
    detector = BurnRateDetector([BurnTier(600, 5, 14.4)], objective=0.99, min_requests=10)
    for t in range(600):
        detector.update(float(t), 0.0, 10.0)
    score = None
    for t in range(600, 603):
        score = detector.update(float(t), 10.0, 10.0)
    assert score is not None
    long_burn, short_burn = detector.burns()[0]
    assert short_burn > 14.4
    assert long_burn < 14.4
    assert score.value < 0.5


def test_burn_rate_warms_up_on_requests_not_points() -> None:
    """Until min_requests have been served the score is warming and 0, even at 100% errors."""
    detector = BurnRateDetector([BurnTier(60, 5, 14.4)], min_requests=50)
    scores = [detector.update(float(t), 10.0, 10.0) for t in range(5)]
    assert all(s.warming and s.value == 0.0 for s in scores[:4])
    assert not scores[4].warming
    assert scores[4].value > 0.5


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_contract_snapshot_restore_resumes_exactly(case: Case) -> None:
    """A detector restored from a JSON snapshot scores the rest of a series like the original."""
    samples = samples_from(13, 200)
    original = case.make()
    case.feed(original, samples[:120])
    data = json.loads(json.dumps(snapshot(original)))
    restored = case.make()
    restore(restored, data)
    tail = samples[120:]
    assert case.feed(restored, tail, t0=120) == case.feed(original, tail, t0=120)


def test_error_burst_takes_impossible_counts_as_no_data() -> None:
    """More errors than requests served (or a negative count) is a corrupt sample: no data,
    nothing learned, never an "error ratio of 1000 %" alert."""
    detector = ErrorBurstDetector(window=5, warmup=10)
    for i in range(20):
        detector.update(float(i), 0.0, 100.0)
    before = snapshot(detector)
    assert detector.update(20.0, 1000.0, 100.0) == NO_DATA
    assert detector.update(21.0, -1.0, 100.0) == NO_DATA
    assert snapshot(detector) == before
