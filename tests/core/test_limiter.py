"""GCRA rate limiting: bursts, steady rate, retry-after, keyed tables and rate changes."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core import limiter as limiter_module
from stanch.core.limiter import MAX_RATE, Gcra, KeyedGcra, RateSpec

EPOCH = 1_700_000_000.0  # a realistic timestamp, where float seconds have ~0.24 µs resolution


# -- RateSpec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0.0, 1), (-1.0, 1), (math.nan, 1), (math.inf, 1), (MAX_RATE * 2, 1), (1.0, 0), (1.0, -3)],
)
def test_rate_spec_rejects_bad_values(rate: float, burst: int) -> None:
    """A non-positive, NaN, infinite or too-high rate, or a burst under 1, raises ValueError."""
    with pytest.raises(ValueError, match=r"^(rate|burst) must"):
        RateSpec(rate=rate, burst=burst)


def test_rate_spec_interval_rounds_up_to_whole_nanoseconds() -> None:
    """T is ceil(1e9 / rate) ns, so the effective rate never exceeds the configured one."""
    assert RateSpec(rate=10.0).interval_ns == 100_000_000
    assert RateSpec(rate=3.0).interval_ns == 333_333_334
    assert RateSpec(rate=3.0, burst=4).tolerance_ns == 3 * 333_333_334
    assert RateSpec(rate=MAX_RATE).interval_ns == 1


def test_rate_spec_default_burst_is_one() -> None:
    """Without a burst, a spec admits one request at a time."""
    assert RateSpec(rate=5.0).burst == 1


# -- Gcra ------------------------------------------------------------------------------------


@pytest.mark.parametrize("burst", [1, 2, 7, 100])
@pytest.mark.parametrize("now", [0.0, 12.345, EPOCH])
@pytest.mark.parametrize("rate", [0.5, 3.0, 100.0, 12_345.0])
def test_fresh_limiter_admits_exactly_burst_at_one_instant(
    rate: float, burst: int, now: float
) -> None:
    """A fresh limiter admits exactly ``burst`` back-to-back requests at the same instant."""
    g = Gcra(RateSpec(rate=rate, burst=burst))
    results = [g.allow(now) for _ in range(burst + 3)]
    assert results[:burst] == [0.0] * burst
    assert all(r > 0 for r in results[burst:])


def test_rejection_returns_the_time_to_the_next_conforming_request() -> None:
    """The retry-after is exact: just before it is refused, at it is admitted."""
    g = Gcra(RateSpec(rate=4.0, burst=2))
    assert g.allow(10.0) == 0.0
    assert g.allow(10.0) == 0.0
    wait = g.allow(10.0)
    assert wait == pytest.approx(0.25)
    assert g.allow(10.0 + wait - 1e-6) > 0
    assert g.allow(10.0 + wait) == 0.0


def test_refused_requests_do_not_use_up_the_rate() -> None:
    """A client hammering while refused is still admitted at the full rate."""
    g = Gcra(RateSpec(rate=10.0))
    admitted = sum(g.allow(i / 1000) == 0.0 for i in range(10_000))  # 1 kHz for 10 s
    assert admitted == 100


def test_arrivals_exactly_on_schedule_are_all_admitted() -> None:
    """Requests spaced exactly 1/rate apart all conform, even with burst 1."""
    # Not at EPOCH: there float seconds themselves are ~0.24 µs apart, so "exactly" is not exact.
    for start in (0.0, 1000.0):
        g = Gcra(RateSpec(rate=10.0))
        assert all(g.allow(start + k / 10) == 0.0 for k in range(500))


@pytest.mark.parametrize(("rate", "burst"), [(10.0, 1), (10.0, 5), (3.0, 4), (250.0, 20)])
def test_long_run_admits_rate_times_duration_plus_burst(rate: float, burst: int) -> None:
    """Over a long saturated run, admissions are rate*duration + burst (within one request)."""
    g = Gcra(RateSpec(rate=rate, burst=burst))
    duration, step = 100.0, 0.0005
    admitted = sum(g.allow(k * step) == 0.0 for k in range(int(duration / step) + 1))
    assert rate * duration + burst - 1 <= admitted <= rate * duration + burst


def test_idle_time_refills_the_burst_but_no_more() -> None:
    """After a long idle period the client gets its burst back, not a backlog of credit."""
    g = Gcra(RateSpec(rate=1.0, burst=3))
    assert [g.allow(0.0) for _ in range(3)] == [0.0] * 3
    results = [g.allow(1000.0) for _ in range(5)]
    assert results[:3] == [0.0] * 3
    assert results[3] > 0


def test_time_going_backwards_never_admits_more() -> None:
    """A request stamped earlier than the last one is judged against the same TAT."""
    g = Gcra(RateSpec(rate=1.0))
    assert g.allow(5.0) == 0.0
    assert g.allow(4.0) == pytest.approx(2.0)


def test_gcra_set_spec_keeps_or_rescales_the_debt() -> None:
    """set_spec without ``now`` keeps the TAT; with ``now`` the debt is rescaled to the new T."""
    kept = Gcra(RateSpec(rate=1.0, burst=1))
    assert kept.allow(0.0) == 0.0  # owes 1 s
    kept.set_spec(RateSpec(rate=10.0))
    assert kept.spec == RateSpec(rate=10.0)
    assert kept.allow(0.5) == pytest.approx(0.5)
    scaled = Gcra(RateSpec(rate=1.0, burst=1))
    assert scaled.allow(0.0) == 0.0
    scaled.set_spec(RateSpec(rate=10.0), now=0.0)  # owing one request = 0.1 s at the new rate
    assert scaled.allow(0.05) == pytest.approx(0.05)
    assert scaled.allow(0.1) == 0.0


# -- KeyedGcra -------------------------------------------------------------------------------


def test_keys_are_limited_independently() -> None:
    """One key's traffic does not use up another key's allowance."""
    k = KeyedGcra(RateSpec(rate=1.0, burst=2))
    assert [k.allow("a", 0.0) for _ in range(3)][2] > 0
    assert [k.allow("b", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert len(k) == 2
    assert "a" in k
    assert "c" not in k


def test_keyed_matches_a_single_gcra_per_key() -> None:
    """Without evictions, each key behaves exactly like its own Gcra."""
    spec = RateSpec(rate=7.0, burst=3)
    keyed, singles = KeyedGcra(spec), {key: Gcra(spec) for key in "xyz"}
    for i in range(3000):
        key, now = "xyz"[i * 7 % 3], i * 0.013
        assert keyed.allow(key, now) == singles[key].allow(now)


def test_max_keys_must_be_positive() -> None:
    """A table with room for no key is refused."""
    with pytest.raises(ValueError, match="max_keys"):
        KeyedGcra(RateSpec(rate=1.0), max_keys=0)


def test_full_table_drops_idle_keys_first_and_loses_nothing() -> None:
    """When full, keys whose TAT has passed are dropped; active keys keep their state."""
    k = KeyedGcra(RateSpec(rate=1.0), max_keys=3)
    assert k.allow("idle1", 0.0) == 0.0
    assert k.allow("idle2", 0.0) == 0.0
    assert k.allow("busy", 9.5) == 0.0  # TAT 10.5
    assert k.allow("new", 10.0) == 0.0
    assert k.evicted == 2
    assert len(k) == 2
    assert "busy" in k
    assert k.allow("busy", 10.0) == pytest.approx(0.5)  # its debt survived


def test_a_key_whose_tat_is_exactly_now_counts_as_idle() -> None:
    """A key due exactly now is as good as fresh, so a full table drops it first."""
    k = KeyedGcra(RateSpec(rate=1.0, burst=2), max_keys=2)
    assert k.allow("busy", 9.0) == k.allow("busy", 9.0) == 0.0  # TAT 11.0, inserted first
    assert k.allow("due", 9.0) == 0.0  # TAT 10.0
    assert k.allow("new", 10.0) == 0.0
    assert "due" not in k
    assert "busy" in k
    assert k.evicted == 1


def test_full_table_of_active_keys_evicts_oldest_inserted() -> None:
    """If no key is idle, the oldest-inserted keys go, down to the low-water mark."""
    k = KeyedGcra(RateSpec(rate=1.0, burst=1), max_keys=20)
    for i in range(20):
        assert k.allow(f"c{i}", 0.0) == 0.0  # all owe until t=1
    assert k.allow("c20", 0.5) == 0.0
    assert k.evicted == 2  # a tenth of the table
    assert "c0" not in k
    assert "c1" not in k
    assert "c2" in k
    assert "c20" in k
    assert len(k) == 19


def test_eviction_keeps_the_table_bounded_under_a_flood_of_new_keys() -> None:
    """A flood of distinct keys never grows the table past max_keys; evictions are counted."""
    k = KeyedGcra(RateSpec(rate=1.0, burst=1), max_keys=100)
    for i in range(5000):
        assert k.allow(i, 1.0) == 0.0
        assert len(k) <= 100
    assert k.evicted == 5000 - len(k)


def test_updating_a_key_does_not_refresh_its_insertion_order() -> None:
    """Eviction order is insertion order: a busy key that was inserted first still goes first."""
    k = KeyedGcra(RateSpec(rate=1000.0, burst=1), max_keys=10)
    for i in range(10):
        k.allow(i, 0.0)
    for _ in range(100):
        k.allow(0, 0.0)  # key 0 hammered, and refused: still the oldest inserted
    k.allow(10, 0.0)
    assert 0 not in k


def test_keyed_set_spec_without_now_keeps_state() -> None:
    """Changing the spec keeps every key's TAT: no key gets a fresh burst."""
    k = KeyedGcra(RateSpec(rate=1.0, burst=1))
    assert k.allow("a", 0.0) == 0.0
    k.set_spec(RateSpec(rate=2.0, burst=1))
    assert k.spec.rate == 2.0
    assert k.allow("a", 0.0) == pytest.approx(1.0)
    assert k.allow("a", 1.0) == 0.0
    assert k.allow("a", 1.0) == pytest.approx(0.5)  # now limited at the new rate


def test_keyed_set_spec_with_now_rescales_each_debt() -> None:
    """With ``now``, each key's debt is kept in requests: a ramp-up takes effect at once."""
    k = KeyedGcra(RateSpec(rate=1.0, burst=4))
    for _ in range(4):
        assert k.allow("a", 0.0) == 0.0  # owes 4 s: 4 requests at 1/s
    assert k.allow("b", 0.0) == 0.0  # owes 1 s
    k.set_spec(RateSpec(rate=4.0, burst=4), now=0.0)
    assert k.allow("a", 0.0) == pytest.approx(0.25)  # 4 requests at 4/s = 1 s, less 0.75 tau
    assert k.allow("b", 0.0) == 0.0
    assert k.allow("a", 0.25) == 0.0


def test_keyed_set_spec_rate_decrease_never_gives_a_fresh_burst() -> None:
    """Lowering the rate right after a burst still refuses the next request."""
    k = KeyedGcra(RateSpec(rate=10.0, burst=5))
    for _ in range(5):
        k.allow("a", 0.0)
    k.set_spec(RateSpec(rate=1.0, burst=5), now=0.0)
    assert k.allow("a", 0.0) > 0


def test_module_doctests_pass() -> None:
    """The examples in the module docstring run and hold."""
    result = doctest.testmod(limiter_module)
    assert result.attempted > 0
    assert result.failed == 0


# -- properties ------------------------------------------------------------------------------

specs = st.builds(
    RateSpec,
    rate=st.one_of(st.sampled_from([0.5, 1.0, 3.0, 10.0]), st.floats(0.01, 1000.0)),
    burst=st.integers(1, 10),
)
arrivals = st.lists(st.floats(0.0, 60.0, allow_nan=False), min_size=1, max_size=150)


def window_bound_holds(spec: RateSpec, admitted: list[float]) -> None:
    """Every window [a_i, a_j] holds at most burst + rate * (a_j - a_i) admitted requests."""
    admitted = sorted(admitted)
    # Float epsilon: the limiter rounds each time to whole nanoseconds via ``t * 1e9``, which is
    # off by up to half an ulp of ``t * 1e9`` plus half a nanosecond; a gap, by twice that.
    resolution_s = (math.ulp(max(abs(t) for t in admitted) * 1e9) + 1.0) * 1e-9
    slack = spec.rate * resolution_s + 1e-9
    for i in range(len(admitted)):
        for j in range(i, len(admitted)):
            count = j - i + 1
            assert count <= spec.burst + spec.rate * (admitted[j] - admitted[i]) + slack


@given(spec=specs, times=arrivals, start=st.sampled_from([0.0, 1000.0, EPOCH]))
@settings(max_examples=300, deadline=None)
def test_admissions_in_any_window_stay_within_burst_plus_rate(
    spec: RateSpec, times: list[float], start: float
) -> None:
    """For sorted random arrivals, no window [t, t+d] admits more than burst + rate*d."""
    g = Gcra(spec)
    stamps = [start + t for t in sorted(times)]
    admitted = [t for t in stamps if g.allow(t) == 0.0]
    assert admitted  # the first request always conforms
    window_bound_holds(spec, admitted)


@given(spec=specs, times=arrivals)
@settings(max_examples=200, deadline=None)
def test_window_bound_holds_even_for_out_of_order_arrivals(
    spec: RateSpec, times: list[float]
) -> None:
    """Arrivals stamped out of order cannot be used to exceed burst + rate*d either."""
    g = Gcra(spec)
    window_bound_holds(spec, [t for t in times if g.allow(t) == 0.0])


@given(spec=specs, gaps=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=100))
@settings(max_examples=200, deadline=None)
def test_arrivals_spaced_at_least_one_interval_apart_all_conform(
    spec: RateSpec, gaps: list[float]
) -> None:
    """GCRA never refuses a request that keeps to the rate."""
    g = Gcra(spec)
    interval = spec.interval_ns / 1e9
    now = 0.0
    for gap in gaps:
        now += interval + gap + 1e-9  # 1 ns margin for rounding times to nanoseconds
        assert g.allow(now) == 0.0


@given(spec=specs, times=arrivals)
@settings(max_examples=200, deadline=None)
def test_retry_after_is_positive_and_sufficient(spec: RateSpec, times: list[float]) -> None:
    """A refusal's retry-after is > 0, and a request after exactly that wait conforms."""
    g = Gcra(spec)
    for t in sorted(times):
        wait = g.allow(t)
        assert wait >= 0.0
        if wait:
            assert wait > 0.0
            assert g.allow(t + wait + 1e-9) == 0.0


@given(
    spec=specs,
    events=st.lists(st.tuples(st.integers(0, 30), st.floats(0.0, 0.5)), max_size=300),
    max_keys=st.integers(1, 40),
)
@settings(max_examples=200, deadline=None)
def test_keyed_table_is_bounded_and_each_key_keeps_the_window_bound(
    spec: RateSpec, events: list[tuple[int, float]], max_keys: int
) -> None:
    """Whatever the key churn, the table stays within max_keys and evictions are counted."""
    k = KeyedGcra(spec, max_keys=max_keys)
    now, inserted = 0.0, 0
    per_key: dict[int, list[float]] = {}
    for key, dt in events:
        now += dt
        inserted += key not in k
        if k.allow(key, now) == 0.0:
            per_key.setdefault(key, []).append(now)
        assert len(k) <= max_keys
    assert k.evicted == inserted - len(k)
    if max_keys > 30:  # keys 0..30 all fit, nothing is evicted: each key keeps its own bound
        assert k.evicted == 0
        for admitted in per_key.values():
            window_bound_holds(spec, admitted)
