"""The circuit breaker: tripping, open backoff, half-open probes, and its transition table."""

from __future__ import annotations

import doctest
import itertools
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from stanch.core import breaker as breaker_module
from stanch.core.breaker import (
    BREAKER_TRANSITIONS,
    TRANSITION_LOG_SIZE,
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
)
from stanch.core.errors import IllegalTransition

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def small(**overrides: Any) -> BreakerConfig:
    """A config small enough to drive by hand in a test."""
    base: dict[str, Any] = {
        "failure_ratio": 0.5,
        "min_calls": 4,
        "window_s": 10.0,
        "open_for_s": 10.0,
        "max_open_for_s": 40.0,
        "half_open_probes": 2,
        "successes_to_close": 2,
    }
    base.update(overrides)
    return BreakerConfig(**base)


def tripped(config: BreakerConfig | None = None, now: float = 0.0) -> CircuitBreaker:
    """A breaker that just tripped OPEN at ``now`` on ``min_calls`` failures."""
    config = config or small()
    b = CircuitBreaker(config, now=now)
    for _ in range(config.min_calls):
        b.record(now, ok=False)
    assert b.state is OPEN
    return b


def half_open(config: BreakerConfig | None = None) -> CircuitBreaker:
    """A breaker that tripped at 0 and moved to HALF_OPEN at its reopen time, no probe taken."""
    b = tripped(config)
    assert b.state_at(b.config.open_for_s) is HALF_OPEN
    return b


# -- table and config ------------------------------------------------------------------------


def test_transition_table_has_exactly_the_four_edges() -> None:
    """CLOSED->OPEN, OPEN->HALF_OPEN, HALF_OPEN->CLOSED|OPEN, and nothing else."""
    edges = {(a, z) for a, targets in BREAKER_TRANSITIONS.items() for z in targets}
    assert edges == {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}
    assert set(BREAKER_TRANSITIONS) == set(BreakerState)


@pytest.mark.parametrize(
    ("frm", "to"),
    [(CLOSED, HALF_OPEN), (OPEN, CLOSED), (CLOSED, CLOSED), (OPEN, OPEN)],
)
def test_moving_along_a_missing_edge_raises_illegal_transition(
    frm: BreakerState, to: BreakerState
) -> None:
    """Any edge not in the table raises IllegalTransition and leaves the state alone."""
    b = CircuitBreaker(small(), start_open=frm is OPEN)
    with pytest.raises(IllegalTransition):
        b._move(1.0, to)
    assert b.state is frm
    assert b.transitions == []


def test_state_values_are_stable_strings() -> None:
    """The states serialize as the lowercase names the timeline and API use."""
    assert [str(s) for s in BreakerState] == ["closed", "open", "half_open"]


def test_config_defaults() -> None:
    """The defaults are the documented ones."""
    c = BreakerConfig()
    assert (c.failure_ratio, c.min_calls, c.window_s) == (0.5, 20, 10.0)
    assert (c.open_for_s, c.max_open_for_s) == (30.0, 300.0)
    assert (c.half_open_probes, c.successes_to_close) == (5, 5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_ratio", 0.0),
        ("failure_ratio", 1.5),
        ("failure_ratio", math.nan),
        ("min_calls", 0),
        ("window_s", 0.5),
        ("window_s", 1e6),
        ("window_s", math.nan),
        ("open_for_s", 0.0),
        ("open_for_s", math.inf),
        ("max_open_for_s", 5.0),
        ("max_open_for_s", math.inf),
        ("half_open_probes", 0),
        ("successes_to_close", 0),
    ],
)
def test_config_rejects_bad_values(field: str, value: float) -> None:
    """Each out-of-range field raises ValueError naming that field."""
    with pytest.raises(ValueError, match=field):
        small(**{field: value})


def test_config_is_frozen() -> None:
    """A config is a value: it cannot be changed after construction."""
    c = small()
    with pytest.raises(AttributeError):
        c.min_calls = 1  # type: ignore[misc]


# -- CLOSED ----------------------------------------------------------------------------------


def test_fresh_breaker_is_closed_and_admits() -> None:
    """A new breaker admits every call and has no transitions."""
    b = CircuitBreaker(small())
    assert b.state is CLOSED
    assert all(b.allow(t / 10) for t in range(100))
    assert b.transitions == []
    assert b.retry_after(0.0) == 0.0


def test_trips_when_min_calls_reached_at_the_failure_ratio() -> None:
    """Trips exactly when calls >= min_calls and failures/calls >= failure_ratio."""
    b = CircuitBreaker(small(min_calls=4, failure_ratio=0.5))
    for ok in (True, False, True):
        b.record(1.0, ok)
    assert b.state is CLOSED  # 3 calls < min_calls
    b.record(1.1, ok=False)  # 2/4 = 0.5 >= 0.5
    assert b.state is OPEN
    assert b.transitions == [(1.1, CLOSED, OPEN)]


def test_does_not_trip_below_min_calls_even_if_all_fail() -> None:
    """Under min_calls the ratio means nothing, however bad."""
    b = CircuitBreaker(small(min_calls=10))
    for _ in range(9):
        b.record(1.0, ok=False)
    assert b.state is CLOSED
    b.record(1.0, ok=False)
    assert b.state is OPEN


def test_does_not_trip_below_the_failure_ratio() -> None:
    """A ratio just under the threshold keeps the breaker closed."""
    b = CircuitBreaker(small(min_calls=10, failure_ratio=0.3))
    for i in range(100):
        b.record(1.0 + i / 1000, ok=i % 4 != 3)  # never above 25% failures
    assert b.state is CLOSED


def test_trips_on_a_success_that_completes_min_calls() -> None:
    """The condition is checked on every call, so a success can complete the quorum."""
    b = CircuitBreaker(small(min_calls=4, failure_ratio=0.5))
    for ok in (False, False, True):
        b.record(1.0, ok)
    b.record(1.0, ok=True)  # 2/4 failures
    assert b.state is OPEN


def test_failures_older_than_the_window_are_forgotten() -> None:
    """Failures age out of the rolling window and stop counting toward a trip."""
    b = CircuitBreaker(small(min_calls=4, window_s=5.0))
    for _ in range(3):
        b.record(0.5, ok=False)
    b.record(5.0, ok=False)  # second 0 has left the 5-second window
    assert b.state is CLOSED
    for _ in range(2):
        b.record(5.5, ok=False)
    assert b.state is CLOSED  # 3 in the window
    b.record(6.0, ok=False)
    assert b.state is OPEN


def test_window_rounds_up_to_whole_seconds() -> None:
    """window_s=2.5 keeps three one-second buckets: second 0 counts at 2.9, not at 3.0."""
    b = CircuitBreaker(small(min_calls=2, window_s=2.5))
    b.record(0.5, ok=False)
    b.record(2.9, ok=False)
    assert b.state is OPEN
    b2 = CircuitBreaker(small(min_calls=2, window_s=2.5))
    b2.record(0.5, ok=False)
    b2.record(3.0, ok=False)
    assert b2.state is CLOSED


def test_a_reused_bucket_is_emptied_before_it_counts_again() -> None:
    """The bucket a new second reuses drops the old second's counts first."""
    b = CircuitBreaker(small(min_calls=3, failure_ratio=1.0, window_s=3.0))
    b.record(0.5, ok=False)
    b.record(1.5, ok=False)
    b.record(3.5, ok=False)  # second 3 reuses second 0's bucket: 2 calls in the window, not 3
    assert b.state is CLOSED
    b.record(3.6, ok=False)
    assert b.state is OPEN


def test_a_long_gap_empties_the_whole_window() -> None:
    """A jump in time far past the window clears every bucket."""
    b = CircuitBreaker(small(min_calls=4, window_s=3.0))
    for _ in range(3):
        b.record(1.0, ok=False)
    b.record(10_000.0, ok=False)
    assert b.state is CLOSED


def test_late_result_inside_the_window_still_counts() -> None:
    """A result stamped a little in the past lands in its own second's bucket."""
    b = CircuitBreaker(small(min_calls=2, window_s=5.0))
    b.record(4.0, ok=False)
    b.record(2.0, ok=False)
    assert b.state is OPEN


def test_result_older_than_the_window_is_ignored() -> None:
    """A result older than the window says nothing about now and is dropped."""
    b = CircuitBreaker(small(min_calls=2, window_s=5.0))
    b.record(100.0, ok=False)
    b.record(10.0, ok=False)
    assert b.state is CLOSED
    b.record(100.0, ok=False)
    assert b.state is OPEN


# -- OPEN ------------------------------------------------------------------------------------


def test_open_refuses_until_open_time_then_half_opens_and_admits() -> None:
    """OPEN refuses before open_for elapses; at the reopen time it half-opens and admits."""
    b = tripped(small(open_for_s=10.0), now=5.0)
    assert not b.allow(5.0)
    assert not b.allow(14.999)
    assert b.state is OPEN
    assert b.allow(15.0)
    assert b.state is HALF_OPEN
    assert b.transitions[-1] == (15.0, OPEN, HALF_OPEN)


def test_retry_after_counts_down_while_open_and_is_zero_otherwise() -> None:
    """retry_after is the time to the reopen time while OPEN, and 0 in any other state."""
    b = tripped(small(open_for_s=10.0), now=0.0)
    assert b.retry_after(0.0) == 10.0
    assert b.retry_after(4.0) == 6.0
    assert b.retry_after(12.0) == 0.0  # due, still OPEN until someone looks
    assert b.state is OPEN
    b.state_at(12.0)
    assert b.retry_after(12.0) == 0.0
    assert CircuitBreaker(small()).retry_after(3.0) == 0.0


def test_state_property_does_not_advance_time_but_state_at_does() -> None:
    """``state`` reports the last known state; ``state_at`` moves a due OPEN to HALF_OPEN."""
    b = tripped(small(open_for_s=10.0))
    assert b.state_at(9.0) is OPEN
    assert b.state is OPEN
    assert b.state_at(10.0) is HALF_OPEN
    assert b.state is HALF_OPEN
    assert b.outstanding_probes == 0


def test_results_recorded_while_open_are_ignored() -> None:
    """Late results of calls admitted before the trip do not change an OPEN breaker."""
    b = tripped()
    before = b.transitions
    for ok in (True, False) * 10:
        b.record(1.0, ok)
    assert b.state is OPEN
    assert b.transitions == before
    assert b.retry_after(1.0) == 9.0


def test_start_open_begins_open_without_logging_a_transition() -> None:
    """start_open=True is OPEN for open_for_s from ``now``; the start is not a transition."""
    b = CircuitBreaker(small(open_for_s=10.0), now=100.0, start_open=True)
    assert b.state is OPEN
    assert b.transitions == []
    assert not b.allow(109.0)
    assert b.allow(110.0)
    assert b.transitions == [(110.0, OPEN, HALF_OPEN)]


# -- HALF_OPEN -------------------------------------------------------------------------------


def test_half_open_admits_at_most_the_probe_limit_outstanding() -> None:
    """HALF_OPEN admits half_open_probes calls, then refuses until a probe reports back."""
    b = half_open(small(half_open_probes=3, successes_to_close=10))
    assert [b.allow(10.0) for _ in range(5)] == [True, True, True, False, False]
    assert b.outstanding_probes == 3
    b.record(10.5, ok=True)
    assert b.outstanding_probes == 2
    assert b.allow(10.6)
    assert not b.allow(10.7)


def test_enough_probe_successes_close_the_breaker() -> None:
    """successes_to_close successful probes close it, and it admits everything again."""
    b = half_open(small(half_open_probes=1, successes_to_close=3))
    for i in range(3):
        assert b.state is HALF_OPEN
        assert b.allow(10.0 + i)
        b.record(10.5 + i, ok=True)
    assert b.state is CLOSED
    assert b.transitions[-1] == (12.5, HALF_OPEN, CLOSED)
    assert all(b.allow(13.0) for _ in range(10))


def test_a_failed_probe_reopens_with_doubled_open_time() -> None:
    """A probe failure re-opens at once, for twice the previous open time."""
    b = half_open(small(open_for_s=10.0, max_open_for_s=100.0))
    assert b.allow(10.0)
    b.record(11.0, ok=False)
    assert b.state is OPEN
    assert b.open_for == 20.0
    assert b.retry_after(11.0) == 20.0
    assert not b.allow(30.9)
    assert b.allow(31.0)


def test_open_time_doubles_up_to_the_cap() -> None:
    """Repeated probe failures double the open time until max_open_for_s, never past it."""
    b = tripped(small(open_for_s=10.0, max_open_for_s=35.0))
    now, seen = 0.0, []
    for _ in range(5):
        now += b.retry_after(now)
        assert b.allow(now)
        b.record(now, ok=False)
        seen.append(b.retry_after(now))
    assert seen == [20.0, 35.0, 35.0, 35.0, 35.0]


def test_closing_resets_the_backoff() -> None:
    """After a close, the next trip opens for the base open time again."""
    cfg = small(open_for_s=10.0, max_open_for_s=100.0, half_open_probes=1, successes_to_close=1)
    b = half_open(cfg)
    assert b.allow(10.0)
    b.record(10.0, ok=False)  # open for 20
    assert b.allow(30.0)
    b.record(30.0, ok=True)
    assert b.state is CLOSED
    assert b.open_for == 10.0
    for _ in range(cfg.min_calls):
        b.record(31.0, ok=False)
    assert b.state is OPEN
    assert b.retry_after(31.0) == 10.0


def test_closing_starts_a_clean_window() -> None:
    """Failures from before the trip do not count after the breaker closes."""
    cfg = small(
        min_calls=4, window_s=60.0, open_for_s=1.0, half_open_probes=1, successes_to_close=1
    )
    b = tripped(cfg, now=0.0)
    assert b.allow(1.0)
    b.record(1.0, ok=True)
    assert b.state is CLOSED
    b.record(2.0, ok=False)  # 1/4 failures now; 5/8 if the pre-trip failures still counted
    b.record(2.0, ok=True)
    b.record(2.0, ok=True)
    b.record(2.0, ok=True)
    assert b.state is CLOSED


def test_result_in_half_open_with_no_probe_outstanding_is_ignored() -> None:
    """A result arriving in HALF_OPEN with no probe out is a pre-trip straggler and is dropped."""
    b = half_open(small(successes_to_close=1))
    b.record(10.0, ok=False)
    assert b.state is HALF_OPEN
    b.record(10.0, ok=True)
    assert b.state is HALF_OPEN
    assert b.allow(10.0)
    b.record(10.1, ok=True)
    assert b.state is CLOSED


# -- force_open and the log ------------------------------------------------------------------


def test_force_open_from_closed() -> None:
    """force_open trips a healthy breaker for the base open time."""
    b = CircuitBreaker(small(open_for_s=10.0))
    b.force_open(3.0)
    assert b.state is OPEN
    assert b.retry_after(3.0) == 10.0
    assert b.transitions == [(3.0, CLOSED, OPEN)]


def test_force_open_from_half_open_keeps_the_current_open_time() -> None:
    """force_open in HALF_OPEN re-opens without the probe-failure doubling."""
    b = half_open(small(open_for_s=10.0))
    assert b.allow(10.0)
    b.force_open(10.0)
    assert b.state is OPEN
    assert b.retry_after(10.0) == 10.0
    assert b.outstanding_probes == 0


def test_force_open_while_open_extends_but_never_shortens() -> None:
    """force_open on an OPEN breaker pushes the reopen time out and logs nothing."""
    b = tripped(small(open_for_s=10.0))
    n = len(b.transitions)
    b.force_open(5.0)
    assert b.retry_after(5.0) == 10.0  # now until 15
    b.force_open(1.0)
    assert b.retry_after(5.0) == 10.0  # 1 + 10 would be earlier: kept at 15
    assert len(b.transitions) == n


def test_transition_log_keeps_only_the_last_hundred() -> None:
    """The log is bounded: after many cycles it holds the newest TRANSITION_LOG_SIZE entries."""
    b = CircuitBreaker(small(half_open_probes=1, successes_to_close=1))
    now = 0.0
    for _ in range(60):  # three transitions per cycle
        b.force_open(now)
        now += b.retry_after(now)
        assert b.allow(now)
        b.record(now, ok=True)
        now += 1.0
    log = b.transitions
    assert len(log) == TRANSITION_LOG_SIZE == 100
    assert log[-1][1:] == (HALF_OPEN, CLOSED)
    assert log[-1][0] == now - 1.0
    assert [t for t, _, _ in log] == sorted(t for t, _, _ in log)


def test_late_result_never_moves_the_log_backwards() -> None:
    """A transition caused by an old-stamped result is logged (and timed) at the last log time."""
    b = half_open(small(open_for_s=10.0))  # HALF_OPEN logged at 10.0
    assert b.allow(10.0)
    b.record(3.0, ok=False)  # the probe's answer carries a stale timestamp
    assert b.transitions[-1] == (10.0, HALF_OPEN, OPEN)
    assert b.retry_after(10.0) == 20.0  # reopen at 10 + 20, not 3 + 20


def test_transitions_is_a_copy() -> None:
    """Mutating the returned list does not change the breaker's log."""
    b = tripped()
    b.transitions.clear()
    assert len(b.transitions) == 1


def test_module_doctests_pass() -> None:
    """The examples in the module docstring run and hold."""
    result = doctest.testmod(breaker_module)
    assert result.attempted > 0
    assert result.failed == 0


# -- state machine ---------------------------------------------------------------------------

configs = st.builds(
    BreakerConfig,
    failure_ratio=st.sampled_from([0.1, 0.25, 0.5, 0.75, 1.0]),
    min_calls=st.integers(1, 6),
    window_s=st.sampled_from([1.0, 2.5, 5.0]),
    open_for_s=st.sampled_from([0.5, 1.0, 3.0]),
    max_open_for_s=st.sampled_from([3.0, 7.0, 12.0]),
    half_open_probes=st.integers(1, 3),
    successes_to_close=st.integers(1, 4),
)


class BreakerMachine(RuleBasedStateMachine):
    """Random allow/record/advance/force_open sequences against a reference window model."""

    def __init__(self) -> None:
        super().__init__()
        self.b = CircuitBreaker(BreakerConfig())
        self.now = 0.0
        self.outstanding = 0  # probes admitted in HALF_OPEN and not yet recorded
        self.window: list[tuple[int, bool]] = []  # (second, ok) since the last reset
        self.head = 0
        self.reopen_at = -math.inf  # when the current open period ends, by the model

    @initialize(config=configs, start=st.floats(0.0, 1e6), start_open=st.booleans())
    def setup(self, config: BreakerConfig, start: float, start_open: bool) -> None:
        self.b = CircuitBreaker(config, now=start, start_open=start_open)
        self.now = start
        self.head = math.floor(start)
        if start_open:
            self.reopen_at = start + config.open_for_s

    def _after(self, before: BreakerState) -> None:
        if self.b.state is not HALF_OPEN:
            self.outstanding = 0
        if before is not OPEN and self.b.state is OPEN:
            self.reopen_at = self.b.transitions[-1][0] + self.b.open_for

    @rule(dt=st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 20.0)))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def allow(self) -> None:
        before = self.b.state
        admitted = self.b.allow(self.now)
        if before is OPEN:
            # Not before the retry time; at or after it, the first probe must be let through.
            assert admitted == (self.now >= self.reopen_at), "OPEN admitted at the wrong time"
            self.outstanding = 0
        if before is CLOSED:
            assert admitted
        if admitted and self.b.state is HALF_OPEN:
            self.outstanding += 1
        self._after(before)

    @rule(ok=st.booleans(), lag=st.sampled_from([0.0, 0.0, 0.0, 0.7, 3.0, 50.0]))
    def record(self, ok: bool, lag: float) -> None:
        before = self.b.state
        open_for_before = self.b.open_for
        at = self.now - lag
        self.b.record(at, ok)
        if before is CLOSED:
            self._check_window(at, ok)
        elif before is HALF_OPEN and self.outstanding > 0:
            self.outstanding -= 1
            if not ok:
                assert self.b.state is OPEN
                cap = self.b.config.max_open_for_s
                assert self.b.open_for == min(2 * open_for_before, cap)
            elif self.b.state is CLOSED:
                assert self.b.open_for == self.b.config.open_for_s, "closing kept the backoff"
                self.window, self.head = [], math.floor(self.b.transitions[-1][0])
        else:
            assert self.b.state is before, "a result with no call behind it changed the state"
        # Shows how often each edge was exercised, with --hypothesis-show-statistics.
        event(f"record: {before} -> {self.b.state}")
        self._after(before)

    def _check_window(self, at: float, ok: bool) -> None:
        n = math.ceil(self.b.config.window_s)
        sec = math.floor(at)
        self.head = max(self.head, sec)
        if self.head - sec < n:
            self.window.append((sec, ok))
        live = [good for s, good in self.window if self.head - s < n]
        calls, fails = len(live), live.count(False)
        cfg = self.b.config
        expect_trip = calls >= cfg.min_calls and fails / calls >= cfg.failure_ratio
        assert (self.b.state is OPEN) == expect_trip
        if expect_trip:
            self.window = []

    @rule()
    def force_open(self) -> None:
        before = self.b.state
        self.b.force_open(self.now)
        assert self.b.state is OPEN
        if before is OPEN:
            self.reopen_at = max(self.reopen_at, self.now + self.b.open_for)
        self._after(before)

    @rule()
    def look(self) -> None:
        before = self.b.state
        state = self.b.state_at(self.now)
        if before is OPEN:
            assert (state is HALF_OPEN) == (self.now >= self.reopen_at)
            self.outstanding = 0
        self._after(before)

    @invariant()
    def state_is_legal(self) -> None:
        """The state is always one of the three."""
        assert self.b.state in set(BreakerState)

    @invariant()
    def every_transition_is_in_the_table_and_they_chain(self) -> None:
        """Each logged edge is in the table, edges chain, and times never run backwards."""
        log = self.b.transitions
        assert len(log) <= TRANSITION_LOG_SIZE
        for _, frm, to in log:
            assert to in BREAKER_TRANSITIONS[frm]
        for (t1, _, to), (t2, frm, _) in itertools.pairwise(log):
            assert to is frm
            assert t1 <= t2
        if log:
            assert log[-1][2] is self.b.state

    @invariant()
    def half_open_never_has_too_many_probes_out(self) -> None:
        """Outstanding probes never exceed half_open_probes, and match the model's count."""
        assert self.outstanding <= self.b.config.half_open_probes
        assert self.b.outstanding_probes == self.outstanding

    @invariant()
    def open_time_is_capped(self) -> None:
        """Open time stays in [open_for_s, max_open_for_s]; retry_after agrees with the model."""
        cfg = self.b.config
        assert cfg.open_for_s <= self.b.open_for <= cfg.max_open_for_s
        if self.b.state is OPEN:
            expected = max(0.0, self.reopen_at - self.now)
            assert self.b.retry_after(self.now) == pytest.approx(expected, abs=1e-9)
            assert expected <= cfg.max_open_for_s + 1e-9
        else:
            assert self.b.retry_after(self.now) == 0.0


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
