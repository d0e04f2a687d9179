"""Rate limiting with GCRA (the generic cell rate algorithm), for one key or many.

GCRA keeps one number per key, the theoretical arrival time (TAT): when the next request would
be due if the client sent at exactly ``rate``. A request at ``now`` conforms when it is at most
``tau = T * (burst - 1)`` early, where ``T = 1 / rate`` is the emission interval; conforming
moves the TAT on by ``T``. This admits ``burst`` requests at once and ``rate`` per second after,
with no timer and no refill loop: O(1) per request and one integer of state per key.

Times are converted to integer nanoseconds once, on the way in, and all arithmetic after that is
exact. With floats, the TAT of a busy key at epoch-sized timestamps drifts by a rounding error
on every request, enough to refuse the last request of a burst. ``T`` is rounded *up* to whole
nanoseconds, so a limiter never admits more than its rate.

>>> g = Gcra(RateSpec(rate=2.0, burst=3))
>>> [g.allow(0.0) for _ in range(4)]  # a fresh limiter admits the burst at once, then waits
[0.0, 0.0, 0.0, 0.5]
>>> g.allow(0.5), g.allow(0.5)  # one more every 1/rate seconds
(0.0, 0.5)
>>> k = KeyedGcra(RateSpec(rate=1.0), max_keys=2)
>>> k.allow("alice", 0.0), k.allow("alice", 0.1), k.allow("bob", 0.1)
(0.0, 0.9, 0.0)
>>> k.allow("carol", 5.0), len(k), k.evicted  # full: idle keys make room, losing nothing
(0.0, 1, 2)
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import islice

_NS_PER_S = 1_000_000_000
_NS = 1e9

#: Below one request per nanosecond: the emission interval must be at least 1 ns.
MAX_RATE = 1e9

#: Never earlier than any real timestamp; a fresh key's TAT, so its first request conforms.
_LONG_AGO = -(1 << 63)


@dataclass(frozen=True, slots=True)
class RateSpec:
    """``rate`` requests per second on average, up to ``burst`` of them at the same instant."""

    rate: float
    burst: int = 1

    def __post_init__(self) -> None:
        # Written as ``not (ok)`` so that NaN, which fails every comparison, is refused too.
        if not 0.0 < self.rate <= MAX_RATE:
            raise ValueError(f"rate must be in (0, {MAX_RATE:g}] per second, got {self.rate!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst!r}")

    @property
    def interval_ns(self) -> int:
        """The emission interval ``T = 1 / rate``, rounded up to whole nanoseconds."""
        return math.ceil(_NS_PER_S / self.rate)

    @property
    def tolerance_ns(self) -> int:
        """``tau``: how early a request may come and still conform."""
        return self.interval_ns * (self.burst - 1)


def _to_ns(now: float) -> int:
    # round, not int: 0.7 * 1e9 is 699999999.99..., and truncating it would refuse a request
    # that arrives exactly on schedule.
    return round(now * _NS)


def _rescale(tat: int, now_ns: int, old_t: int, new_t: int) -> int:
    """Keep the TAT's debt, counted in requests rather than seconds, across a rate change."""
    debt = tat - now_ns
    if debt <= 0:
        return tat
    return now_ns + -(-debt * new_t // old_t)  # ceiling: a rescale never forgives a request


class Gcra:
    """A GCRA limiter for one key."""

    __slots__ = ("_spec", "_t", "_tat", "_tau")

    def __init__(self, spec: RateSpec) -> None:
        self._spec = spec
        self._t = spec.interval_ns
        self._tau = spec.tolerance_ns
        self._tat = _LONG_AGO

    @property
    def spec(self) -> RateSpec:
        return self._spec

    def allow(self, now: float) -> float:
        """0.0 if a request at ``now`` conforms (and counts it); else seconds to wait (> 0)."""
        now_ns = round(now * _NS)
        tat = self._tat
        if tat < now_ns:
            tat = now_ns
        wait = tat - now_ns - self._tau
        if wait > 0:
            return wait / _NS
        self._tat = tat + self._t
        return 0.0

    def set_spec(self, spec: RateSpec, now: float | None = None) -> None:
        """Change the rate in place; see :meth:`KeyedGcra.set_spec`."""
        old_t = self._t
        self._spec, self._t, self._tau = spec, spec.interval_ns, spec.tolerance_ns
        if now is not None and self._t != old_t:
            self._tat = _rescale(self._tat, _to_ns(now), old_t, self._t)


class KeyedGcra:
    """One GCRA per key (a client id, a route), tracking at most ``max_keys`` keys.

    When a new key finds the table full, keys whose TAT has passed are dropped first: such a
    key behaves exactly like a fresh one, so dropping it loses nothing. If that frees less than
    a tenth of the table, the oldest-inserted keys go too, down to that low-water mark. Freeing
    a tenth at a time is what keeps the sweep amortized O(1) per request when the table is full
    of active keys (many clients, or a client rotating ids); a key that is dropped while active
    gets a fresh burst when it returns. ``evicted`` counts every key dropped.
    """

    __slots__ = ("_evicted", "_max_keys", "_spec", "_t", "_tats", "_tau")

    def __init__(self, spec: RateSpec, *, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys!r}")
        self._spec = spec
        self._t = spec.interval_ns
        self._tau = spec.tolerance_ns
        self._max_keys = max_keys
        # Insertion-ordered, so the first keys are the oldest inserted: that is the eviction order.
        self._tats: dict[Hashable, int] = {}
        self._evicted = 0

    @property
    def spec(self) -> RateSpec:
        return self._spec

    @property
    def max_keys(self) -> int:
        return self._max_keys

    @property
    def evicted(self) -> int:
        """How many keys were dropped to keep the table within ``max_keys``."""
        return self._evicted

    def __len__(self) -> int:
        return len(self._tats)

    def __contains__(self, key: object) -> bool:
        return key in self._tats

    def allow(self, key: Hashable, now: float) -> float:
        """0.0 if ``key`` may make a request at ``now`` (and counts it); else seconds to wait."""
        now_ns = round(now * _NS)
        tats = self._tats
        tat = tats.get(key)
        if tat is None:
            if len(tats) >= self._max_keys:
                self._make_room(now_ns)
            tat = now_ns
        elif tat < now_ns:
            tat = now_ns
        wait = tat - now_ns - self._tau
        if wait > 0:
            return wait / _NS
        tats[key] = tat + self._t
        return 0.0

    def set_spec(self, spec: RateSpec, now: float | None = None) -> None:
        """Change the rate for every key in place, without forgetting what each key owes.

        Without ``now``, each TAT is kept as it is: a key still waits out, in seconds, what it
        owed at the old rate, and the new spec applies from there; it is never looser than a
        fresh limiter at the new spec. With ``now`` (what a throttle ramp should pass), each
        key's debt is rescaled to the new emission interval: owing 3 requests stays owing 3, so
        a ramp-up takes effect at once and a ramp-down hands out no fresh burst. Rescaling is
        O(keys): it is meant for ramp steps, not for every request.
        """
        old_t = self._t
        self._spec, self._t, self._tau = spec, spec.interval_ns, spec.tolerance_ns
        if now is None or self._t == old_t:
            return
        now_ns, new_t, tats = _to_ns(now), self._t, self._tats
        for key, tat in tats.items():  # replacing values, not keys, is safe while iterating
            if tat > now_ns:
                tats[key] = _rescale(tat, now_ns, old_t, new_t)

    def _make_room(self, now_ns: int) -> None:
        tats = self._tats
        before = len(tats)
        for key in [k for k, tat in tats.items() if tat <= now_ns]:
            del tats[key]
        low_water = self._max_keys - max(1, self._max_keys // 10)
        excess = len(tats) - low_water
        if excess > 0:
            for key in list(islice(tats, excess)):
                del tats[key]
        self._evicted += before - len(tats)
