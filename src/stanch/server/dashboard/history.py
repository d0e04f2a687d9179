"""Recent signal history for the dashboard's charts, bounded and in memory.

The engine keeps no time series: detectors learn from each point and let it go. The dashboard
needs the last hour to draw, so :class:`SignalHistory` listens to the engine's closed points
(``Engine.on_points``) and keeps, per series,

* every point of the last 15 minutes (1 s at the default interval) for incident charts, and
* 10-second summaries of the last hour for the overview's sparklines,

each with the detector's expectation and quiet band at that moment (see :mod:`.bands`).
Storage is flat ``array`` rings (float32 values, float64 times): about 55 KB per series, and at
most ``max_series`` series (the engine's own cardinality guard bounds them first).
A coarse bucket sums the counts of its seconds (so its rate and error ratio are exact) and
averages their p95 and bands. Charts of longer ranges are bucketed the same way at read time.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stanch.core.detection import SeriesMonitor
from stanch.core.series import SeriesKey
from stanch.core.windows import Point
from stanch.server.dashboard.bands import NO_BANDS, Bands, BandState

# Column order of a stored row; the band columns come from ``Bands``.
COLUMNS = ("requests", "served", "errors", "enforced", "p95", *Bands.COLUMNS)
_WIDTH = len(COLUMNS)
_NAN = math.nan
_COUNTS = 4  # the first columns are counts: summed in a coarse bucket
_P95 = 4  # column of the p95 latency


class _Ring:
    """A fixed-size ring of rows (time + ``_WIDTH`` float32 values), oldest overwritten."""

    __slots__ = ("capacity", "head", "size", "times", "values")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.times = array("d", [_NAN]) * capacity
        self.values = array("f", [_NAN]) * (capacity * _WIDTH)
        self.head = 0  # where the next row goes
        self.size = 0

    def append(self, t: float, row: Sequence[float]) -> None:
        i = self.head
        self.times[i] = t
        self.values[i * _WIDTH : (i + 1) * _WIDTH] = array("f", row)
        self.head = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def rows(self, since: float = -math.inf, until: float = math.inf) -> list[tuple[float, ...]]:
        """(t, *values) of each row with ``since <= t <= until``, oldest first."""
        start = (self.head - self.size) % self.capacity
        out = []
        for n in range(self.size):
            i = (start + n) % self.capacity
            t = self.times[i]
            if since <= t <= until:
                out.append((t, *self.values[i * _WIDTH : (i + 1) * _WIDTH]))
        return out

    @property
    def first_t(self) -> float | None:
        return None if self.size == 0 else self.times[(self.head - self.size) % self.capacity]

    @property
    def last(self) -> tuple[float, ...] | None:
        if self.size == 0:
            return None
        i = (self.head - 1) % self.capacity
        return (self.times[i], *self.values[i * _WIDTH : (i + 1) * _WIDTH])


class _Bucket:
    """One coarse bucket being filled."""

    __slots__ = ("filled", "index", "sums", "weights")

    def __init__(self, index: int) -> None:
        self.index = index
        self.sums = [0.0] * _WIDTH
        self.weights = [0] * _WIDTH
        self.filled = 0

    def add(self, row: Sequence[float]) -> None:
        self.filled += 1
        for i, value in enumerate(row):
            if value != value:  # NaN: nothing measured
                continue
            self.sums[i] += value
            self.weights[i] += 1

    def row(self) -> list[float]:
        out = []
        for i, (total, n) in enumerate(zip(self.sums, self.weights, strict=True)):
            if i < _COUNTS:
                out.append(total)
            elif n == 0:
                out.append(_NAN)
            else:
                out.append(total / n)
        return out


@dataclass(frozen=True, slots=True)
class Window:
    """Chart columns over a time range; ``None`` where nothing was measured."""

    step: float
    t: list[float]
    columns: dict[str, list[float | None]]

    def to_json(self) -> dict[str, object]:
        return {"step": self.step, "t": self.t, **self.columns}


class SeriesHistory:
    """The two rings of one series, and the state its bands need between points."""

    __slots__ = ("bands", "bucket", "coarse", "fine")

    def __init__(self, fine_points: int, coarse_points: int) -> None:
        self.fine = _Ring(fine_points)
        self.coarse = _Ring(coarse_points)
        self.bucket: _Bucket | None = None
        self.bands = BandState()


class SignalHistory:
    """Per-series rings fed by ``Engine.on_points``; read by the dashboard's pages."""

    def __init__(
        self,
        *,
        fine_s: float = 900.0,
        coarse_s: float = 3600.0,
        coarse_step_s: float = 10.0,
        interval_s: float = 1.0,
        max_series: int = 200,
    ) -> None:
        self.interval_s = interval_s
        self.coarse_step_s = coarse_step_s
        self.fine_points = max(1, round(fine_s / interval_s))
        self.coarse_points = max(1, round(coarse_s / coarse_step_s))
        self.max_series = max_series
        self.series: dict[SeriesKey, SeriesHistory] = {}
        self.dropped = 0  # points of series beyond max_series
        self.updates = 0  # steps recorded: the data version live pages poll
        self.folds = 0  # coarse buckets completed: the sparklines' version

    def record(self, points: Iterable[Point], monitors: dict[SeriesKey, SeriesMonitor]) -> None:
        """Keep ``points``, with each monitor's expectation after it scored them."""
        for point in points:
            history = self.series.get(point.key)
            if history is None:
                if len(self.series) >= self.max_series:
                    self.dropped += 1
                    continue
                history = self.series[point.key] = SeriesHistory(
                    self.fine_points, self.coarse_points
                )
            monitor = monitors.get(point.key)
            bands = history.bands.update(monitor) if monitor is not None else NO_BANDS
            row = (
                float(point.requests),
                float(point.served),
                float(point.errors),
                float(point.enforced),
                point.p95,
                *bands.values(),
            )
            history.fine.append(point.t, row)
            self._fold(history, point.t, row)
        self.updates += 1

    def _fold(self, history: SeriesHistory, t: float, row: Sequence[float]) -> None:
        index = math.floor(t / self.coarse_step_s)
        bucket = history.bucket
        if bucket is not None and bucket.index != index:
            history.coarse.append(bucket.index * self.coarse_step_s, bucket.row())
            self.folds += 1
            bucket = None
        if bucket is None:
            bucket = history.bucket = _Bucket(index)
        bucket.add(row)

    # -- reading ----------------------------------------------------------------------------

    def series_keys(self) -> list[SeriesKey]:
        return sorted(self.series)

    def last_hour(self, key: SeriesKey) -> Window:
        """The completed 10-second summaries, for sparklines (they change once a bucket
        completes, so their answer can be cached on :attr:`folds`)."""
        history = self.series.get(key)
        if history is None:
            return Window(self.coarse_step_s, [], {})
        return _window(history.coarse.rows(), self.coarse_step_s)

    def latest(self, key: SeriesKey, seconds: float = 10.0) -> dict[str, float | None] | None:
        """The last ``seconds`` of a series summed up (rate, err, p95, bands), or None.

        A single second is too noisy to read: a route with two requests a second swings
        between 0% and 100% errors."""
        history = self.series.get(key)
        last = history.fine.last if history is not None else None
        if history is None or last is None:
            return None
        rows = history.fine.rows(since=last[0] - seconds + self.interval_s / 2)
        bucket = _Bucket(0)
        for row in rows:
            bucket.add(row[1:])
        summed = (last[0], *bucket.row())
        span = len(rows) * self.interval_s
        return {name: column[0] for name, column in _columns([summed], span).items()}

    def between(self, key: SeriesKey, since: float, until: float, step: float = 0.0) -> Window:
        """Points from ``since`` to ``until``: 1 s where the fine ring still has them, 10 s
        summaries before that, summed into ``step``-second buckets when ``step`` is coarser."""
        history = self.series.get(key)
        if history is None:
            return Window(max(step, self.interval_s), [], {})
        fine_from = history.fine.first_t
        coarse: list[tuple[float, ...]] = []
        if fine_from is None or since < fine_from:
            limit = until if fine_from is None else fine_from - self.coarse_step_s
            coarse = history.coarse.rows(since, limit)
        fine = history.fine.rows(since, until)
        if step > self.coarse_step_s or (step > self.interval_s and not coarse):
            return _window(_rebucket(coarse + fine, step), step)
        columns = _columns(coarse, self.coarse_step_s)
        for name, values in _columns(fine, self.interval_s).items():
            columns[name].extend(values)
        times = [row[0] for row in coarse] + [row[0] for row in fine]
        return Window(self.interval_s if fine else self.coarse_step_s, times, columns)


def _rebucket(rows: list[tuple[float, ...]], step: float) -> list[tuple[float, ...]]:
    """Rows summed into ``step``-second buckets (counts added, the rest averaged)."""
    out: list[tuple[float, ...]] = []
    bucket: _Bucket | None = None
    for row in rows:
        index = math.floor(row[0] / step)
        if bucket is not None and bucket.index != index:
            out.append((bucket.index * step, *bucket.row()))
            bucket = None
        if bucket is None:
            bucket = _Bucket(index)
        bucket.add(row[1:])
    if bucket is not None:
        out.append((bucket.index * step, *bucket.row()))
    return out


def _window(rows: list[tuple[float, ...]], step: float) -> Window:
    return Window(step, [row[0] for row in rows], _columns(rows, step))


def _columns(rows: list[tuple[float, ...]], step: float) -> dict[str, list[float | None]]:
    """Rows as chart columns: rate (req/s), error ratio, p95 (s) and the band columns."""
    names = ("rate", "err", "p95", *Bands.COLUMNS)
    out: dict[str, list[float | None]] = {name: [] for name in names}
    band_at = {name: 1 + COLUMNS.index(name) for name in Bands.COLUMNS}
    for row in rows:
        requests, served, errors = row[1], row[2], row[3]
        p95 = row[1 + _P95]
        out["rate"].append(_num(requests / step))
        out["err"].append(_num(errors / served) if served > 0 else None)
        out["p95"].append(_num(p95))
        for name, at in band_at.items():
            out[name].append(_num(row[at]))
    return out


def _num(value: float) -> float | None:
    """A JSON-safe number (NaN and infinities are gaps), rounded to float32's precision."""
    if value != value or math.isinf(value):
        return None
    return float(f"{value:.6g}")
