"""DeficitRun: missing requests add up over a run under the expectation, and only then."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanch.core.count_run import DeficitRun


@pytest.mark.parametrize(("rate", "seconds"), [(2.0, 32), (10.0, 100), (50.0, 7)])
def test_silence_above_one_request_per_second_is_sqrt_of_the_missing_requests(
    rate: float, seconds: int
) -> None:
    run = DeficitRun()
    z = 0.0
    for _ in range(seconds):
        z = run.push(0.0, rate, 1.0, 1.0)
    assert z == pytest.approx(math.sqrt(rate * seconds))


def test_silence_below_one_request_per_second_needs_minutes_whatever_the_interval() -> None:
    """The 1 req/s variance floor: at 0.3 req/s, z = 0.3 * sqrt(seconds), so z = 8 takes
    about 12 minutes, whether points are 1 s or 10 s long."""
    by_second, by_ten = DeficitRun(), DeficitRun()
    for _ in range(711):
        by_second.push(0.0, 0.3, 1.0, 1.0)
    for _ in range(71):
        by_ten.push(0.0, 0.3, 10.0, 1.0)
    assert by_second.z == pytest.approx(0.3 * math.sqrt(711))
    assert by_ten.z == pytest.approx(0.3 * math.sqrt(710))
    assert 7.9 < by_second.z < 8.1


def test_a_point_at_or_over_the_expectation_ends_the_run() -> None:
    run = DeficitRun()
    for _ in range(50):
        run.push(0.0, 5.0, 1.0, 1.0)
    assert run.z > 10
    assert run.push(5.0, 5.0, 1.0, 1.0) == 0.0
    assert run.push(3.0, 5.0, 1.0, 1.0) == pytest.approx(2.0 / math.sqrt(5.0))


def test_the_expectation_is_held_at_the_runs_first_while_the_baseline_sags() -> None:
    """A baseline learning the silence as normal does not talk the run out of it."""
    sagging, steady = DeficitRun(), DeficitRun()
    for i in range(300):
        sagging.push(0.0, 4.0 * 0.99**i, 1.0, 1.0)
        steady.push(0.0, 4.0, 1.0, 1.0)
    assert sagging.z == pytest.approx(steady.z)


def test_burstier_traffic_needs_more_evidence() -> None:
    poisson, bursty = DeficitRun(), DeficitRun()
    for _ in range(60):
        poisson.push(0.0, 5.0, 1.0, 1.0)
        bursty.push(0.0, 5.0, 1.0, 4.0)
    assert bursty.z == pytest.approx(poisson.z / 2)


def test_non_finite_input_changes_nothing() -> None:
    run = DeficitRun()
    run.push(0.0, 5.0, 1.0, 1.0)
    before = run.z
    for bad in (math.nan, math.inf, -math.inf):
        assert run.push(bad, 5.0, 1.0, 1.0) == before
        assert run.push(0.0, bad, 1.0, 1.0) == before
    assert run.push(0.0, 5.0, 0.0, 1.0) == before


@given(
    st.lists(
        st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(0.1, 60), st.floats(0, 10)),
        max_size=200,
    )
)
def test_z_is_finite_and_never_negative(points: list[tuple[float, float, float, float]]) -> None:
    run = DeficitRun()
    for observed, expected, interval, dispersion in points:
        z = run.push(observed, expected, interval, dispersion)
        assert math.isfinite(z)
        assert z >= 0.0
        if observed >= expected:
            assert z == 0.0


def test_without_hold_the_run_follows_a_declining_expectation() -> None:
    """For the daily profile, a decline is the known shape of the day: followed, not held."""
    held, following = DeficitRun(), DeficitRun(hold=False)
    for i in range(60):
        expected = max(1.0, 10.0 - i)
        held.push(0.0, expected, 1.0, 1.0)
        following.push(0.0, expected, 1.0, 1.0)
    assert following.z == pytest.approx(math.sqrt(54.0 + 51.0))  # 10..2, then 1 x 51
    assert held.z == pytest.approx(math.sqrt(600.0))  # 10 x 60
