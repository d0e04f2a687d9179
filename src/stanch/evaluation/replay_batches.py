"""Rows of history to per-window batches in time order, tolerating rows slightly out of order.

A backtest scores each window once, in time order, as the live engine does; history merged from
several hosts, or written when a request ends rather than when it starts, is out of order by
seconds. Holding rows ``max_skew_s`` before their window is released keeps them in their own
window in bounded memory. This is apart from the replay because it owns only the ordering: what
counts as late and what becomes of it, not how windows are scored.

**Gaps.** Within recorded history, a window without rows is silence and is replayed as such
(events: every known series gets a zero point, so a service that stops answering is seen to
stop). A stretch of more than ``max_gap_s`` (default :data:`DEFAULT_MAX_GAP_S`, 30 minutes)
without a single row is taken for *missing history* instead (the recorder was off, a file was
lost, a stray row is dated years ahead), not an outage: the windows before it are closed and
replay resumes at the next row, without stepping through the empty windows in between. So a
gap costs neither time nor memory, and raises no traffic-drop alert; the detectors keep what
they learned and see the gap as no data. :class:`~stanch.evaluation.backtest.Replay` counts
such gaps and leaves them out of the replayed (covered) time. A real outage that silences
every route of a service for longer than ``max_gap_s`` is therefore not replayed as one: lower
``max_gap_s`` to replay longer silences.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator

from stanch.core.events import RequestEvent
from stanch.core.series import CardinalityGuard
from stanch.core.windows import Point, WindowAggregator

#: Seconds a row may be older than a row before it and still count in its own window.
DEFAULT_MAX_SKEW_S = 30.0
#: Seconds without a single row beyond which history is missing rather than silent.
DEFAULT_MAX_GAP_S = 1800.0


def gap_s(before: float, after: float, interval: float) -> float:
    """Seconds of empty windows between the window holding ``before`` and the one holding
    ``after`` (window starts are multiples of ``interval``): the one measure of a gap, shared
    by the event windows that skip it and the replay that counts it."""
    return (math.floor(after / interval) - math.floor(before / interval) - 1) * interval


class EventWindows:
    """Request events to per-window point batches, as the engine's windows would close them.

    Windows close ``max_skew_s`` behind the newest event, so events up to that much out of
    order still land in their own window; older ones are counted in ``late`` and folded into
    the next open window, as live. The first windows close only once the events span
    ``max_skew_s``, so a file that starts slightly out of order loses nothing either.

    An event more than ``max_gap_s`` of empty windows after the newest one starts a new
    stretch: every open window is closed, and the windows of the gap are skipped (no zero
    points for them); the new stretch starts as the first one did, learning its series anew.
    ``gaps`` counts such gaps.
    """

    def __init__(
        self,
        *,
        interval: float = 1.0,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        max_series: int = 500,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        if max_skew_s < 0:
            raise ValueError(f"max_skew_s must be >= 0, got {max_skew_s:g}")
        if not max_gap_s > max_skew_s:
            raise ValueError(f"max_gap_s must be > max_skew_s, got {max_gap_s:g}")
        self.interval = interval
        self.max_skew_s = max_skew_s
        self.max_gap_s = max_gap_s
        self.guard = CardinalityGuard(max_series)
        self.windows = WindowAggregator(interval, self.guard)
        self.events = 0
        self.gaps = 0
        self.max_lateness_s = 0.0
        self._late_before = 0  # late events of the stretches before this one

    @property
    def late(self) -> int:
        return self._late_before + self.windows.late

    def batches(self, events: Iterable[RequestEvent]) -> Iterator[list[Point]]:
        windows, interval, skew = self.windows, self.interval, self.max_skew_s
        max_gap = self.max_gap_s
        stream = iter(events)
        first = next(stream, None)
        if first is None:
            return
        windows.add(first)
        count = 1
        newest = first.ts
        next_close = first.ts + interval  # the first close waits for max_skew_s of events ...
        closed_until = -math.inf  # events before this are late
        lateness = 0.0
        for event in stream:
            ts = event.ts
            if ts > newest + max_gap and gap_s(newest, ts, interval) > max_gap:
                # Missing history: close this stretch, and start the next one at ``ts`` as
                # the first one started, instead of closing every empty window in between.
                self.events = count
                yield from group_by_time(windows.close(newest + interval))
                self.gaps += 1
                self._late_before += windows.late
                windows = self.windows = WindowAggregator(interval, self.guard)
                newest = ts
                next_close = ts + interval
                closed_until = -math.inf
            elif ts > newest:
                newest = ts
                if ts - skew >= next_close:
                    horizon = math.floor((ts - skew) / interval) * interval
                    next_close = horizon + interval
                    closed_until = horizon
                    self.events = count
                    yield from group_by_time(windows.close(horizon))
            elif ts < newest - skew:
                if closed_until == -math.inf:  # ... or for one more than max_skew_s late
                    horizon = math.floor((newest - skew) / interval) * interval
                    next_close = horizon + interval
                    closed_until = horizon
                    self.events = count
                    yield from group_by_time(windows.close(horizon))
                if ts < closed_until and newest - ts > lateness:
                    lateness = newest - ts
            windows.add(event)
            count += 1
        self.events = count
        self.max_lateness_s = lateness
        yield from group_by_time(windows.close(newest + interval))


class PointOrder:
    """Metric points to per-window batches in time order, from rows up to ``max_skew_s`` out of
    order (a window is held until a point ``max_skew_s`` newer arrives).

    A point of a window already released is late: counted in ``late`` and dropped, since the
    detectors have scored that window.
    """

    def __init__(self, *, max_skew_s: float = DEFAULT_MAX_SKEW_S) -> None:
        if max_skew_s < 0:
            raise ValueError(f"max_skew_s must be >= 0, got {max_skew_s:g}")
        self.max_skew_s = max_skew_s
        self.late = 0
        self.max_lateness_s = 0.0

    def batches(self, points: Iterable[Point]) -> Iterator[list[Point]]:
        skew = self.max_skew_s
        pending: dict[float, list[Point]] = {}
        starts: list[float] = []  # heap of the pending windows' starts
        newest = -math.inf
        for point in points:
            t = point.t
            batch = pending.get(t)
            if batch is None:
                if t < newest - skew:  # every window that old is released (or never was)
                    self.late += 1
                    self.max_lateness_s = max(self.max_lateness_s, newest - t)
                    continue
                batch = pending[t] = []
                heapq.heappush(starts, t)
                if t > newest:
                    newest = t
                    while starts[0] < t - skew:
                        yield pending.pop(heapq.heappop(starts))
            batch.append(point)
        while starts:
            yield pending.pop(heapq.heappop(starts))


def group_by_time(points: Iterable[Point]) -> Iterator[list[Point]]:
    """Consecutive points of the same window start, as one batch each."""
    batch: list[Point] = []
    for point in points:
        if batch and point.t != batch[0].t:
            yield batch
            batch = []
        batch.append(point)
    if batch:
        yield batch
