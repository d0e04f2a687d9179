"""Running totals per series, fed from closed points: what ``/metrics`` reports per route.

Points are per-window; a scrape wants counters that only grow. :class:`SeriesTotals` adds each
closed :class:`~stanch.core.windows.Point` into cumulative counts (requests offered, served by the
app, app errors, answered by Stanch) and keeps the latency quantiles of the series' last closed
window (a :class:`Point` carries quantiles, not a latency sum, so a cumulative latency is not
available; the served count is). The number of series is capped: the engine's cardinality guard
already bounds route series, and ``max_series`` bounds the rest (service-wide series, agents),
folding newcomers into one :data:`OVERFLOW` series that is still counted.

Not thread-safe by itself: one writer (the engine) calls :meth:`SeriesTotals.add`. A reader in
another thread should use :meth:`SeriesTotals.snapshot`, which copies; counters it returns never
go down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from stanch.core.series import OVERFLOW_ROUTE, SeriesKey
from stanch.core.windows import Point

OVERFLOW = SeriesKey(OVERFLOW_ROUTE, OVERFLOW_ROUTE)
"""Where points of series past ``max_series`` are counted; its quantiles stay NaN."""

DEFAULT_MAX_SERIES = 1_000  # twice the engine's default route cap, to leave room for services


@dataclass(frozen=True, slots=True)
class SeriesTotal:
    """Cumulative counts of one series, and the quantiles of its last closed window.

    ``p50``/``p95``/``p99`` are NaN when that window served nothing (or for :data:`OVERFLOW`);
    ``last_t_end`` is when that window ended.
    """

    key: SeriesKey
    requests: int
    served: int
    errors: int
    enforced: int
    windows: int
    p50: float
    p95: float
    p99: float
    last_t_end: float


class _Running:
    __slots__ = (
        "enforced",
        "errors",
        "last_t_end",
        "p50",
        "p95",
        "p99",
        "requests",
        "served",
        "windows",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.served = 0
        self.errors = 0
        self.enforced = 0
        self.windows = 0
        self.p50 = math.nan
        self.p95 = math.nan
        self.p99 = math.nan
        self.last_t_end = -math.inf


class SeriesTotals:
    """Cumulative per-series counters built from closed points.

    >>> from stanch.core.series import SeriesKey
    >>> from stanch.core.windows import Point
    >>> key = SeriesKey("shop", "GET /products/{id}")
    >>> totals = SeriesTotals()
    >>> totals.add([Point(key, 0.0, 1.0, 10, 8, 1, 2, 0.02, 0.05, 0.09)])
    >>> totals.add([Point(key, 1.0, 1.0, 5, 5, 0, 0, 0.03, 0.06, 0.10)])
    >>> t = totals.get(key)
    >>> (t.requests, t.served, t.errors, t.enforced, t.p99, t.last_t_end)
    (15, 13, 1, 2, 0.1, 2.0)
    """

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES) -> None:
        if max_series < 1:
            raise ValueError("max_series must be at least 1")
        self.max_series = max_series
        self._series: dict[SeriesKey, _Running] = {}
        self.overflowed = 0
        """Points folded into :data:`OVERFLOW` because the cap was reached."""
        self.last_window_end: float | None = None
        """End of the latest window seen, in the engine's time: the detector's position."""

    def add(self, points: Iterable[Point]) -> None:
        """Add closed points (any order; a window's quantiles replace older ones only)."""
        series = self._series
        for point in points:
            key = point.key
            running = series.get(key)
            if running is None:
                # The overflow series does not count against the cap: it is the cap's safety net.
                if len(series) - (OVERFLOW in series) >= self.max_series:
                    self.overflowed += 1
                    key = OVERFLOW
                    running = series.get(key)
                if running is None:
                    running = series[key] = _Running()
            running.requests += point.requests
            running.served += point.served
            running.errors += point.errors
            running.enforced += point.enforced
            running.windows += 1
            t_end = point.t_end
            if key is not OVERFLOW and t_end >= running.last_t_end:
                running.p50, running.p95, running.p99 = point.p50, point.p95, point.p99
            running.last_t_end = max(running.last_t_end, t_end)
            if self.last_window_end is None or t_end > self.last_window_end:
                self.last_window_end = t_end

    def get(self, key: SeriesKey) -> SeriesTotal | None:
        running = self._series.get(key)
        return None if running is None else _freeze(key, running)

    def snapshot(self) -> list[SeriesTotal]:
        """Every series' totals, sorted by key; safe to call while another thread adds."""
        items = list(self._series.items())  # one copy, so a concurrent add cannot resize it
        return sorted((_freeze(k, r) for k, r in items), key=lambda t: t.key)

    def __len__(self) -> int:
        return len(self._series)


def _freeze(key: SeriesKey, r: _Running) -> SeriesTotal:
    return SeriesTotal(
        key,
        r.requests,
        r.served,
        r.errors,
        r.enforced,
        r.windows,
        r.p50,
        r.p95,
        r.p99,
        r.last_t_end,
    )


__all__ = ["DEFAULT_MAX_SERIES", "OVERFLOW", "SeriesTotal", "SeriesTotals"]
