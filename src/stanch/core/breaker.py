"""Circuit breaker: stop sending traffic to a failing route, then probe it back to health.

The breaker is CLOSED while the failure ratio over a short rolling window stays under the
threshold. When it crosses (with enough calls to mean something) the breaker trips OPEN and
refuses everything, so a struggling dependency gets room to recover. After ``open_for`` seconds
it turns HALF_OPEN and admits a few probes: enough successes close it, one failure re-opens it
for twice as long (capped), so a route that keeps failing is probed less and less often.

Time is always an argument and nothing here reads a clock, so the same breaker runs live, in a
replay, and in tests. The CLOSED ``allow()`` path is one attribute test: it runs on every request.

Callers must ``record()`` every call ``allow()`` admitted (a timeout is a failure): the breaker
counts outstanding probes, and a probe that is never recorded keeps its slot taken.

>>> cfg = BreakerConfig(min_calls=4, open_for_s=10.0, half_open_probes=1, successes_to_close=2)
>>> b = CircuitBreaker(cfg, now=0.0)
>>> for t, ok in [(0.1, True), (0.2, False), (0.3, True), (0.4, False)]:
...     b.record(t, ok)
>>> print(b.state)
open
>>> b.allow(5.0), b.retry_after(5.0)
(False, 5.4)
>>> b.allow(10.4), b.allow(10.5)  # half-open admits one probe at a time
(True, False)
>>> b.record(10.6, ok=False)  # the probe failed: open again, for twice as long
>>> b.retry_after(10.6)
20.0
>>> b.allow(30.6), b.record(30.7, ok=True), b.allow(30.8), b.record(30.9, ok=True)
(True, None, True, None)
>>> print(b.state)
closed
>>> [(t, str(a), str(z)) for t, a, z in b.transitions]  # doctest: +NORMALIZE_WHITESPACE
[(0.4, 'closed', 'open'), (10.4, 'open', 'half_open'), (10.6, 'half_open', 'open'),
 (30.6, 'open', 'half_open'), (30.9, 'half_open', 'closed')]
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from stanch.core.errors import IllegalTransition

#: How many transitions a breaker remembers; the engine drains them onto the timeline.
TRANSITION_LOG_SIZE = 100

#: Upper bound on ``window_s``: the ring holds one bucket per second, and memory must stay small.
MAX_WINDOW_S = 3600.0


class BreakerState(StrEnum):
    CLOSED = "closed"  # traffic flows; failures are counted
    OPEN = "open"  # traffic refused until the open time runs out
    HALF_OPEN = "half_open"  # a few probes decide between CLOSED and OPEN


BREAKER_TRANSITIONS: dict[BreakerState, frozenset[BreakerState]] = {
    BreakerState.CLOSED: frozenset({BreakerState.OPEN}),
    BreakerState.OPEN: frozenset({BreakerState.HALF_OPEN}),
    BreakerState.HALF_OPEN: frozenset({BreakerState.CLOSED, BreakerState.OPEN}),
}


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When to trip, how long to stay open, and how to probe back.

    ``window_s`` is rounded up to whole seconds: the window is the last ``ceil(window_s)``
    one-second buckets, the current one included. ``open_for_s`` doubles after each failed
    half-open, up to ``max_open_for_s``, and resets when the breaker closes.
    """

    failure_ratio: float = 0.5
    min_calls: int = 20
    window_s: float = 10.0
    open_for_s: float = 30.0
    max_open_for_s: float = 300.0
    half_open_probes: int = 5
    successes_to_close: int = 5

    def __post_init__(self) -> None:
        # Written as ``not (ok)`` so that NaN, which fails every comparison, is refused too.
        if not 0.0 < self.failure_ratio <= 1.0:
            raise ValueError(f"failure_ratio must be in (0, 1], got {self.failure_ratio!r}")
        if self.min_calls < 1:
            raise ValueError(f"min_calls must be >= 1, got {self.min_calls!r}")
        if not 1.0 <= self.window_s <= MAX_WINDOW_S:
            raise ValueError(f"window_s must be in [1, {MAX_WINDOW_S:g}], got {self.window_s!r}")
        if not (self.open_for_s > 0.0 and math.isfinite(self.open_for_s)):
            raise ValueError(f"open_for_s must be finite and > 0, got {self.open_for_s!r}")
        if not (self.open_for_s <= self.max_open_for_s and math.isfinite(self.max_open_for_s)):
            raise ValueError(
                f"max_open_for_s must be finite and >= open_for_s ({self.open_for_s!r}), "
                f"got {self.max_open_for_s!r}"
            )
        if self.half_open_probes < 1:
            raise ValueError(f"half_open_probes must be >= 1, got {self.half_open_probes!r}")
        if self.successes_to_close < 1:
            raise ValueError(f"successes_to_close must be >= 1, got {self.successes_to_close!r}")


class CircuitBreaker:
    """One breaker (one route, one dependency). Mutable, O(1) per call, bounded memory."""

    __slots__ = (
        "_buckets",
        "_calls",
        "_closed",
        "_config",
        "_fails",
        "_head",
        "_log",
        "_min_calls",
        "_open_for",
        "_outstanding",
        "_ratio",
        "_reopen_at",
        "_state",
        "_successes",
        "_total_calls",
        "_total_fails",
    )

    def __init__(
        self, config: BreakerConfig, *, now: float = 0.0, start_open: bool = False
    ) -> None:
        self._config = config
        # Copied out of the config: the record path reads them on every call.
        self._ratio = config.failure_ratio
        self._min_calls = config.min_calls
        self._buckets = math.ceil(config.window_s)
        self._calls = [0] * self._buckets
        self._fails = [0] * self._buckets
        self._total_calls = 0
        self._total_fails = 0
        self._head = int(now // 1.0)  # the newest second the ring holds
        self._open_for = config.open_for_s
        self._reopen_at = -math.inf
        self._outstanding = 0
        self._successes = 0
        self._log: deque[tuple[float, BreakerState, BreakerState]] = deque(
            maxlen=TRANSITION_LOG_SIZE
        )
        # ``_closed`` mirrors ``_state is CLOSED`` so the hot path is a single slot read.
        self._state = BreakerState.CLOSED
        self._closed = True
        if start_open:
            # The starting state is not a transition, so nothing is logged.
            self._state = BreakerState.OPEN
            self._closed = False
            self._reopen_at = now + self._open_for

    # -- reading -------------------------------------------------------------------------------

    @property
    def config(self) -> BreakerConfig:
        return self._config

    @property
    def state(self) -> BreakerState:
        """The state as of the last call; does not advance time (see :meth:`state_at`)."""
        return self._state

    @property
    def transitions(self) -> list[tuple[float, BreakerState, BreakerState]]:
        """The last ``TRANSITION_LOG_SIZE`` transitions as ``(now, from, to)``, oldest first."""
        return list(self._log)

    @property
    def open_for(self) -> float:
        """How long the current (or next) open period lasts, after backoff."""
        return self._open_for

    @property
    def outstanding_probes(self) -> int:
        """Half-open probes admitted and not yet recorded."""
        return self._outstanding

    def state_at(self, now: float) -> BreakerState:
        """The state at ``now``, moving OPEN to HALF_OPEN if the open time has run out."""
        if self._state is BreakerState.OPEN and now >= self._reopen_at:
            self._move(now, BreakerState.HALF_OPEN)
        return self._state

    def retry_after(self, now: float) -> float:
        """Seconds until the breaker will admit a probe; 0.0 when it is not OPEN."""
        if self._state is BreakerState.OPEN:
            return max(0.0, self._reopen_at - now)
        return 0.0

    # -- deciding ------------------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """May a call go through at ``now``? A True in HALF_OPEN takes a probe slot."""
        if self._closed:
            return True
        return self._allow_not_closed(now)

    def _allow_not_closed(self, now: float) -> bool:
        if self._state is BreakerState.OPEN:
            if now < self._reopen_at:
                return False
            self._move(now, BreakerState.HALF_OPEN)
        if self._outstanding < self._config.half_open_probes:
            self._outstanding += 1
            return True
        return False

    def record(self, now: float, ok: bool) -> None:
        """The outcome of a call that ``allow()`` admitted.

        CLOSED: counted in the rolling window; may trip. OPEN: ignored, as it belongs to a call
        admitted before the trip. HALF_OPEN: a probe result; ignored when no probe is
        outstanding, since it can only be a late answer from before the trip.
        """
        if not self._closed:
            self._record_probe(now, ok)
            return
        sec = int(now // 1.0)
        if sec > self._head:
            self._roll(sec)
        elif self._head - sec >= self._buckets:
            return  # older than the whole window: it no longer says anything about now
        i = sec % self._buckets
        self._calls[i] += 1
        calls = self._total_calls = self._total_calls + 1
        if not ok:
            self._fails[i] += 1
            self._total_fails += 1
        if calls >= self._min_calls and self._total_fails / calls >= self._ratio:
            self._open(now, self._config.open_for_s)

    def force_open(self, now: float) -> None:
        """Open now, for the current open time (an operator or runbook decision).

        Already OPEN: the open period is extended to end no earlier than ``now + open_for``.
        """
        if self._state is BreakerState.OPEN:
            self._reopen_at = max(self._reopen_at, now + self._open_for)
        else:
            self._open(now, self._open_for)

    # -- internals -----------------------------------------------------------------------------

    def _record_probe(self, now: float, ok: bool) -> None:
        if self._state is not BreakerState.HALF_OPEN or self._outstanding == 0:
            return
        self._outstanding -= 1
        if not ok:
            self._open(now, min(self._open_for * 2.0, self._config.max_open_for_s))
            return
        self._successes += 1
        if self._successes >= self._config.successes_to_close:
            at = self._move(now, BreakerState.CLOSED)
            self._open_for = self._config.open_for_s
            self._reset_window(at)

    def _open(self, now: float, open_for: float) -> None:
        at = self._move(now, BreakerState.OPEN)
        self._open_for = open_for
        self._reopen_at = at + open_for

    def _move(self, now: float, to: BreakerState) -> float:
        """Take one edge of the table; returns the time it was logged at."""
        frm = self._state
        if to not in BREAKER_TRANSITIONS[frm]:
            raise IllegalTransition(f"circuit breaker cannot go from {frm} to {to}")
        # A late result carries an old timestamp; the timeline must still never run backwards.
        if self._log and now < self._log[-1][0]:
            now = self._log[-1][0]
        self._state = to
        self._closed = to is BreakerState.CLOSED
        self._outstanding = 0
        self._successes = 0
        self._log.append((now, frm, to))
        return now

    def _roll(self, sec: int) -> None:
        """Move the ring's head to ``sec``, emptying the buckets of the seconds it skips."""
        n = self._buckets
        if sec - self._head >= n:
            self._clear_ring()
        else:
            calls, fails = self._calls, self._fails
            for s in range(self._head + 1, sec + 1):
                i = s % n
                self._total_calls -= calls[i]
                self._total_fails -= fails[i]
                calls[i] = 0
                fails[i] = 0
        self._head = sec

    def _reset_window(self, now: float) -> None:
        # A closed breaker starts from a clean slate: pre-trip failures must not re-trip it.
        self._clear_ring()
        self._head = int(now // 1.0)

    def _clear_ring(self) -> None:
        for i in range(self._buckets):
            self._calls[i] = 0
            self._fails[i] = 0
        self._total_calls = 0
        self._total_fails = 0
