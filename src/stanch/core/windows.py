"""Time buckets that close into per-series points: rate, error ratio, latency quantiles.

Each event lands in the bucket ``floor(ts / interval)`` of its route series and of its service
series. ``close(now)`` turns every bucket that ended at or before ``now`` into a :class:`Point`,
and emits empty points for known series that saw no traffic, since silence is a signal too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from ddsketch import DDSketch

from stanch.core.events import RequestEvent
from stanch.core.series import SERVICE_WIDE, CardinalityGuard, SeriesKey, route_key

MAX_CLIENTS_PER_BUCKET = 256
OTHER_CLIENTS = "__other__"


@dataclass(frozen=True, slots=True)
class ClientStats:
    requests: int
    errors: int
    enforced: int


@dataclass(frozen=True, slots=True)
class Point:
    """One closed window of one series.

    ``requests`` is the offered load, including requests Stanch answered itself (``enforced``);
    ``served`` is what reached the app, and ``errors`` / latencies are the app's own.
    """

    key: SeriesKey
    t: float
    interval: float
    requests: int
    served: int
    errors: int
    enforced: int
    p50: float
    p95: float
    p99: float
    clients: dict[str, ClientStats] = field(default_factory=dict, compare=False, hash=False)

    @property
    def rate(self) -> float:
        """Offered requests per second."""
        return self.requests / self.interval

    @property
    def error_ratio(self) -> float:
        return self.errors / self.served if self.served else 0.0

    @property
    def t_end(self) -> float:
        return self.t + self.interval


class _Bucket:
    __slots__ = ("clients", "enforced", "errors", "requests", "sketch")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.enforced = 0
        self.sketch: DDSketch | None = None
        self.clients: dict[str, list[int]] = {}

    def add(self, event: RequestEvent) -> None:
        self.requests += 1
        error = event.is_error
        if event.enforced:
            self.enforced += 1
        else:
            if error:
                self.errors += 1
            if self.sketch is None:
                self.sketch = DDSketch(relative_accuracy=0.01)
            self.sketch.add(max(event.latency_s, 1e-6))
        client = event.client
        if client:
            stats = self.clients.get(client)
            if stats is None:
                if len(self.clients) >= MAX_CLIENTS_PER_BUCKET:
                    client = OTHER_CLIENTS
                    stats = self.clients.get(client)
                if stats is None:
                    stats = self.clients[client] = [0, 0, 0]
            stats[0] += 1
            if error:
                stats[1] += 1
            if event.enforced:
                stats[2] += 1

    def to_point(self, key: SeriesKey, t: float, interval: float) -> Point:
        nan = math.nan
        p50 = p95 = p99 = nan
        if self.sketch is not None:
            p50 = _q(self.sketch, 0.5)
            p95 = _q(self.sketch, 0.95)
            p99 = _q(self.sketch, 0.99)
        return Point(
            key=key,
            t=t,
            interval=interval,
            requests=self.requests,
            served=self.requests - self.enforced,
            errors=self.errors,
            enforced=self.enforced,
            p50=p50,
            p95=p95,
            p99=p99,
            clients={c: ClientStats(*s) for c, s in self.clients.items()},
        )


def _q(sketch: DDSketch, q: float) -> float:
    value = sketch.get_quantile_value(q)
    return math.nan if value is None else float(value)


class WindowAggregator:
    """Buckets request events by ``interval`` seconds into route and service series.

    Events older than the last closed window are late: history that detectors already scored
    is never reopened, so a late event is counted in ``late`` and folded into the oldest window
    still open. Counts stay exact (every accepted event is aggregated somewhere); only its time
    shifts, by at most its lateness.
    """

    def __init__(self, interval: float = 1.0, guard: CardinalityGuard | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.guard = guard if guard is not None else CardinalityGuard()
        self._open: dict[int, dict[SeriesKey, _Bucket]] = {}
        self._known: set[SeriesKey] = set()
        self._next_index: int | None = None
        self.late = 0

    def add(self, event: RequestEvent) -> None:
        index = math.floor(event.ts / self.interval)
        if self._next_index is not None and index < self._next_index:
            self.late += 1
            index = self._next_index
        buckets = self._open.get(index)
        if buckets is None:
            buckets = self._open[index] = {}
        route = self.guard.admit(SeriesKey(event.service, route_key(event.method, event.route)))
        service = SeriesKey(event.service, SERVICE_WIDE)
        for key in (route, service):
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = _Bucket()
            bucket.add(event)

    def add_many(self, events: Iterable[RequestEvent]) -> None:
        for event in events:
            self.add(event)

    def close(self, now: float) -> list[Point]:
        """Close every window that ended at or before ``now``, oldest first."""
        last_closable = math.floor(now / self.interval) - 1
        if self._next_index is None:
            if not self._open:
                return []
            self._next_index = min(self._open)
        points: list[Point] = []
        while self._next_index <= last_closable:
            index = self._next_index
            buckets = self._open.pop(index, {})
            self._known.update(buckets)
            t = index * self.interval
            for key in sorted(self._known):
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = _EMPTY
                points.append(bucket.to_point(key, t, self.interval))
            self._next_index = index + 1
        return points

    @property
    def known_series(self) -> frozenset[SeriesKey]:
        return frozenset(self._known)


_EMPTY = _Bucket()
