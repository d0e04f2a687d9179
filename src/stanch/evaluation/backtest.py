"""Backtests: replay recorded history through the detectors and score the alerts against labels.

History (request events, or metric points that skip aggregation) is replayed once, whatever
the number of candidate settings: events are bucketed by one :class:`WindowAggregator`, and
each closed point is scored by every candidate's own :class:`SeriesMonitor` for its series.
Nothing reads a clock, so a day replays in about a minute from events, far less from points.

History need not be perfectly sorted: rows up to ``max_skew_s`` (default
:data:`DEFAULT_MAX_SKEW_S`) older than a row before them still land in their own window (events
are held that long before their window closes; points are buffered as long). Logs merged from
several hosts, or written when a request ends rather than when it starts, are out of order by
about that much. Rows later than that are counted: late events are folded into the next open
window, as live ingestion does, and late points are dropped; :func:`replay_warnings` says so.
An unsorted file cannot be replayed in bounded memory, so it is reported, not sorted.

Scoring, per candidate:

- an alert (one FIRED edge: re-fires while firing are the same alert) is a **true positive**
  when it fires within ``[label.start - slack_s, label.end]`` on the label's service, on a
  route its glob matches (a service-wide alert, route ``"*"``, matches any route), and of its
  kind (a label without kind takes any); otherwise it is a **false alarm**;
- a label is **detected** when an alert matches it; its **time to detect** is the first such
  alert's fire time (the end of the window that fired it) minus ``label.start`` (negative
  when the alert beat the labeled start, inside the slack);
- precision = TP / alerts, recall = detected / labels, false alarms per day = FP / replayed days;
- a label outside the replayed history (no overlap of ``[start - slack_s, end]`` with it) cannot
  be detected by any setting: it is listed apart (:attr:`BacktestResult.outside`), not missed.

With a runbook, each alert is matched to the actions its rules would have proposed (before the
engine's per-incident de-duplication), counted apart for false alarms: auto actions on false
alarms are what a candidate would have cost.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stanch.core.alerts import Alert, AlertKind
from stanch.core.detection import DetectionConfig, SeriesMonitor, route_config
from stanch.core.errors import ValidationError
from stanch.core.events import RequestEvent
from stanch.core.runbook import Runbook
from stanch.core.series import SERVICE_WIDE, CardinalityGuard, SeriesKey
from stanch.core.windows import Point, WindowAggregator
from stanch.evaluation.history import Label, read_events, read_points, sniff_format

DAY_S = 86_400.0
DEFAULT_SLACK_S = 30.0
#: Seconds a row may be older than a row before it and still count in its own window.
DEFAULT_MAX_SKEW_S = 30.0
#: Above this share of late rows, the history is taken to be unsorted rather than skewed.
UNSORTED_SHARE = 0.5
#: The alert kinds the detectors raise, in report order.
DETECTOR_KINDS: tuple[AlertKind, ...] = (
    AlertKind.TRAFFIC_SPIKE,
    AlertKind.TRAFFIC_DROP,
    AlertKind.ERROR_BURST,
    AlertKind.SLO_BURN,
    AlertKind.LATENCY_SPIKE,
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """Detector settings to try: ``defaults``, overridden per route key or glob."""

    name: str
    defaults: DetectionConfig = field(default_factory=DetectionConfig)
    routes: Mapping[str, DetectionConfig] = field(default_factory=dict, hash=False)

    def config_for(self, route: str) -> DetectionConfig:
        return route_config(route, self.defaults, self.routes)


@dataclass(frozen=True, slots=True)
class Fire:
    """One alert firing: where, when (``at``: the end of the window that fired it), and the
    indices of the labels it matched (empty: a false alarm)."""

    service: str
    route: str
    kind: AlertKind
    at: float
    started_at: float
    labels: tuple[int, ...]
    actions: tuple[str, ...] = ()

    @property
    def is_false_alarm(self) -> bool:
        return not self.labels


@dataclass(frozen=True, slots=True)
class SeriesStats:
    """One series and alert kind: its alerts, and the labels it could and did detect."""

    service: str
    route: str
    kind: AlertKind
    alerts: int
    false_positives: int
    labels: frozenset[int]
    detections: Mapping[int, float] = field(hash=False)  # label index -> time to detect

    @property
    def true_positives(self) -> int:
        return self.alerts - self.false_positives

    @property
    def recall(self) -> float | None:
        return len(self.detections) / len(self.labels) if self.labels else None


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """How one candidate did on the replayed history."""

    candidate: Candidate
    span_s: float
    points: int
    events: int
    late: int
    labels: tuple[Label, ...]
    fires: tuple[Fire, ...]
    series: tuple[SeriesStats, ...]
    actions: Mapping[str, int] = field(default_factory=dict, hash=False)
    actions_on_false_alarms: Mapping[str, int] = field(default_factory=dict, hash=False)
    #: Indices of the labels outside the replayed history: undetectable, so not scored.
    outside: frozenset[int] = frozenset()
    start: float | None = None  # first window start replayed
    duplicates: int = 0  # points of a series and window seen before, dropped
    max_skew_s: float = DEFAULT_MAX_SKEW_S
    max_lateness_s: float = 0.0  # how far behind the newest row the latest late row was

    @property
    def days(self) -> float:
        return self.span_s / DAY_S

    @property
    def alerts(self) -> int:
        return len(self.fires)

    @property
    def false_positives(self) -> int:
        return sum(1 for f in self.fires if f.is_false_alarm)

    @property
    def true_positives(self) -> int:
        return self.alerts - self.false_positives

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.alerts if self.fires else None

    @property
    def detections(self) -> dict[int, float]:
        """Label index -> time to detect, over every series."""
        return merge_detections(s.detections for s in self.series)

    @property
    def recall(self) -> float | None:
        """Detected / labels inside the replayed history (None when there are none)."""
        scored = len(self.labels) - len(self.outside)
        return len(self.detections) / scored if scored else None

    @property
    def rows(self) -> int:
        """Rows read: events, or points (scored, late and duplicated)."""
        return self.events or self.points + self.late + self.duplicates

    @property
    def false_alarms_per_day(self) -> float:
        return self.false_positives / self.days if self.span_s > 0 else 0.0

    @property
    def median_ttd(self) -> float | None:
        ttd = list(self.detections.values())
        return statistics.median(ttd) if ttd else None

    @property
    def max_ttd(self) -> float | None:
        return max(self.detections.values(), default=None)

    @property
    def missed(self) -> list[Label]:
        """Labels inside the replayed history that no alert matched."""
        found = self.detections
        return [
            label for i, label in enumerate(self.labels) if i not in found and i not in self.outside
        ]

    @property
    def unreplayed(self) -> list[Label]:
        """Labels outside the replayed history, which no setting could have detected."""
        return [label for i, label in enumerate(self.labels) if i in self.outside]


def fire_order(fire: Fire) -> tuple[float, str, str, int]:
    """Fires in time order, then by series and kind: the order results list them in."""
    return (fire.at, fire.service, fire.route, DETECTOR_KINDS.index(fire.kind))


def merge_detections(parts: Iterable[Mapping[int, float]]) -> dict[int, float]:
    """Label index -> earliest time to detect among ``parts``."""
    merged: dict[int, float] = {}
    for part in parts:
        for index, ttd in part.items():
            if index not in merged or ttd < merged[index]:
                merged[index] = ttd
    return merged


def matching_labels(
    labels: Sequence[Label],
    service: str,
    route: str,
    kind: AlertKind,
    at: float,
    slack_s: float = DEFAULT_SLACK_S,
) -> tuple[int, ...]:
    """Indices of the labels an alert firing at ``at`` on this series and kind matches."""
    return tuple(
        i
        for i, label in enumerate(labels)
        if label.start - slack_s <= at <= label.end and label.covers(service, route, kind)
    )


class Replay:
    """Scores points, one window at a time, with every candidate's monitors."""

    def __init__(
        self,
        candidates: Sequence[Candidate],
        labels: Sequence[Label],
        *,
        runbook: Runbook | None = None,
        slack_s: float = DEFAULT_SLACK_S,
    ) -> None:
        if not candidates:
            raise ValueError("a backtest needs at least one candidate")
        self.candidates = tuple(candidates)
        self.labels = tuple(labels)
        self.runbook = runbook
        self.slack_s = slack_s
        self.points = 0
        self.duplicates = 0
        self.first_t: float | None = None
        self.last_t_end: float | None = None
        self._monitors: list[dict[SeriesKey, SeriesMonitor]] = [{} for _ in self.candidates]
        self._fires: list[list[Fire]] = [[] for _ in self.candidates]
        self._last_t: dict[SeriesKey, float] = {}

    def observe(self, batch: Sequence[Point]) -> None:
        """Score one window's points (all of one ``t``, service-wide points among them)."""
        service_points = {p.key.service: p for p in batch if p.key.route == SERVICE_WIDE}
        for point in batch:
            key = point.key
            last = self._last_t.get(key)
            if last is not None and point.t <= last:
                self.duplicates += 1  # batches come in time order: a series' window seen twice
                continue
            self._last_t[key] = point.t
            self.points += 1
            if self.first_t is None or point.t < self.first_t:
                self.first_t = point.t
            if self.last_t_end is None or point.t_end > self.last_t_end:
                self.last_t_end = point.t_end
            service_point = service_points.get(key.service)
            for index, monitors in enumerate(self._monitors):
                monitor = monitors.get(key)
                if monitor is None:
                    monitor = monitors[key] = self._monitor(index, point)
                for alert in monitor.observe(point, service_point):
                    if alert.is_firing:
                        self._fires[index].append(self._fire(alert))

    def _monitor(self, index: int, point: Point) -> SeriesMonitor:
        config = self.candidates[index].config_for(point.key.route)
        if not math.isclose(point.interval, config.interval_s):
            raise ValidationError(
                f"points of {point.key} last {point.interval:g} s but the detection settings "
                f"of candidate {self.candidates[index].name!r} say interval_s={config.interval_s:g}"
            )
        return SeriesMonitor(point.key, config)

    def _fire(self, alert: Alert) -> Fire:
        at = alert.updated_at
        labels = matching_labels(
            self.labels, alert.service, alert.route, alert.kind, at, self.slack_s
        )
        actions: tuple[str, ...] = ()
        if self.runbook is not None:
            actions = tuple(
                f"{rule.name}: {spec.kind} ({spec.mode})"
                for rule, spec in self.runbook.actions_for(alert)
            )
        return Fire(alert.service, alert.route, alert.kind, at, alert.started_at, labels, actions)

    def results(
        self,
        *,
        events: int = 0,
        late: int = 0,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        max_lateness_s: float = 0.0,
    ) -> list[BacktestResult]:
        """One result per candidate; the keywords describe the rows the driver fed in."""
        span = (self.last_t_end or 0.0) - (self.first_t or 0.0)
        outside = self._outside()
        return [
            replace(
                self._result(candidate, self._fires[i], span, outside),
                events=events,
                late=late,
                max_skew_s=max_skew_s,
                max_lateness_s=max_lateness_s,
            )
            for i, candidate in enumerate(self.candidates)
        ]

    def _outside(self) -> frozenset[int]:
        """Labels no alert of this replay could match: alerts fire within the replayed span."""
        if self.first_t is None or self.last_t_end is None:
            return frozenset(range(len(self.labels)))
        first, last = self.first_t, self.last_t_end
        return frozenset(
            i
            for i, label in enumerate(self.labels)
            if label.end < first or label.start - self.slack_s > last
        )

    def _result(
        self, candidate: Candidate, fires: list[Fire], span: float, outside: frozenset[int]
    ) -> BacktestResult:
        fires = sorted(fires, key=fire_order)
        by_series: dict[tuple[str, str, AlertKind], list[Fire]] = {}
        for fire in fires:
            by_series.setdefault((fire.service, fire.route, fire.kind), []).append(fire)
        rows = []
        for key in sorted(self._last_t):
            for kind in DETECTOR_KINDS:
                own = by_series.get((key.service, key.route, kind), [])
                detections: dict[int, float] = {}
                for fire in own:  # in time order: the first match is the earliest
                    for i in fire.labels:
                        detections.setdefault(i, fire.at - self.labels[i].start)
                relevant = frozenset(
                    i
                    for i, lb in enumerate(self.labels)
                    if i not in outside and lb.covers(key.service, key.route, kind)
                )
                rows.append(
                    SeriesStats(
                        service=key.service,
                        route=key.route,
                        kind=kind,
                        alerts=len(own),
                        false_positives=sum(1 for f in own if f.is_false_alarm),
                        labels=relevant,
                        detections=detections,
                    )
                )
        actions: Counter[str] = Counter()
        on_false: Counter[str] = Counter()
        for fire in fires:
            actions.update(fire.actions)
            if fire.is_false_alarm:
                on_false.update(fire.actions)
        return BacktestResult(
            candidate=candidate,
            span_s=span,
            points=self.points,
            events=0,
            late=0,
            labels=self.labels,
            fires=tuple(fires),
            series=tuple(rows),
            actions=dict(sorted(actions.items())),
            actions_on_false_alarms=dict(sorted(on_false.items())),
            outside=outside,
            start=self.first_t,
            duplicates=self.duplicates,
        )


# --------------------------------------------------------------------------- drivers


class EventWindows:
    """Request events to per-window point batches, as the engine's windows would close them.

    Windows close ``max_skew_s`` behind the newest event, so events up to that much out of
    order still land in their own window; older ones are counted in ``late`` and folded into
    the next open window, as live. The first windows close only once the events span
    ``max_skew_s``, so a file that starts slightly out of order loses nothing either.
    """

    def __init__(
        self,
        *,
        interval: float = 1.0,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        max_series: int = 500,
    ) -> None:
        if max_skew_s < 0:
            raise ValueError(f"max_skew_s must be >= 0, got {max_skew_s:g}")
        self.interval = interval
        self.max_skew_s = max_skew_s
        self.windows = WindowAggregator(interval, CardinalityGuard(max_series))
        self.events = 0
        self.max_lateness_s = 0.0

    @property
    def late(self) -> int:
        return self.windows.late

    def batches(self, events: Iterable[RequestEvent]) -> Iterator[list[Point]]:
        windows, interval, skew = self.windows, self.interval, self.max_skew_s
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
            if ts > newest:
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


def _interval(candidates: Sequence[Candidate]) -> float:
    intervals = {c.defaults.interval_s for c in candidates} | {
        r.interval_s for c in candidates for r in c.routes.values()
    }
    if len(intervals) != 1:
        raise ValidationError(f"candidates disagree on interval_s: {sorted(intervals)}")
    return intervals.pop()


def backtest_events(
    events: Iterable[RequestEvent],
    candidates: Sequence[Candidate],
    labels: Sequence[Label],
    *,
    runbook: Runbook | None = None,
    slack_s: float = DEFAULT_SLACK_S,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> list[BacktestResult]:
    """Replay request events (in roughly time order) through every candidate, in one pass."""
    windows = EventWindows(interval=_interval(candidates), max_skew_s=max_skew_s)
    replay = Replay(candidates, labels, runbook=runbook, slack_s=slack_s)
    for batch in windows.batches(events):
        replay.observe(batch)
    return replay.results(
        events=windows.events,
        late=windows.late,
        max_skew_s=max_skew_s,
        max_lateness_s=windows.max_lateness_s,
    )


def backtest_points(
    points: Iterable[Point],
    candidates: Sequence[Candidate],
    labels: Sequence[Label],
    *,
    runbook: Runbook | None = None,
    slack_s: float = DEFAULT_SLACK_S,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> list[BacktestResult]:
    """Replay metric points (in roughly time order) through every candidate, in one pass."""
    order = PointOrder(max_skew_s=max_skew_s)
    replay = Replay(candidates, labels, runbook=runbook, slack_s=slack_s)
    for batch in order.batches(points):
        replay.observe(batch)
    return replay.results(
        late=order.late, max_skew_s=max_skew_s, max_lateness_s=order.max_lateness_s
    )


def backtest_file(
    path: str | Path,
    candidates: Sequence[Candidate],
    labels: Sequence[Label],
    *,
    fmt: str | None = None,
    runbook: Runbook | None = None,
    slack_s: float = DEFAULT_SLACK_S,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> list[BacktestResult]:
    """Replay a history file: ``fmt`` is ``"events"`` or ``"points"`` (None: guess from it).

    A file without a single row is refused (ValidationError): scoring nothing would report
    every label as missed and no false alarm, which reads like a result.
    """
    fmt = fmt or sniff_format(path)
    options: dict[str, Any] = {"runbook": runbook, "slack_s": slack_s, "max_skew_s": max_skew_s}
    if fmt == "events":
        results = backtest_events(read_events(path), candidates, labels, **options)
    elif fmt == "points":
        points = read_points(path, interval=_interval(candidates))
        results = backtest_points(points, candidates, labels, **options)
    else:
        raise ValidationError(f"unknown history format {fmt!r}; expected events or points")
    require_history(results, f"{path}:1: (file): no {fmt} to replay: the file has no rows")
    return results


def require_history(results: Sequence[BacktestResult], message: str) -> None:
    """ValidationError(``message``) when the replay scored no point at all."""
    if not results or results[0].points == 0:
        raise ValidationError(message)


# --------------------------------------------------------------------------- reports

#: Lateness up to which ``--max-skew`` is suggested; beyond it, only sorting the file helps.
_SKEW_HINT_LIMIT_S = 3600.0


def replay_warnings(result: BacktestResult, *, sort_hint: str = "") -> list[str]:
    """What a reader of the scores must know about the replayed rows, worst first.

    Late rows and labels outside the history change what the numbers mean, and a terminal
    table shows neither; ``sort_hint`` (a command) is added when the history looks unsorted.
    """
    warnings: list[str] = []
    rows, late = result.rows, result.late
    if late:
        share = late / rows if rows else 1.0
        if share > UNSORTED_SHARE:
            advice = f"Sort it by ts{f' ({sort_hint})' if sort_hint else ''} and replay again"
            if result.max_lateness_s <= _SKEW_HINT_LIMIT_S:
                advice += f", or pass --max-skew {math.ceil(result.max_lateness_s) + 1}"
            warnings.append(
                f"{share:.0%} of the history is out of time order (a reversed or unsorted "
                f"file?), so these scores do not describe it. {advice}."
            )
        what = "events" if result.events else "points"
        fate = (
            "their windows had already closed, so each was counted in the next open window, "
            "as live ingestion does"
            if result.events
            else "their windows had already been scored, so they were dropped"
        )
        warnings.append(
            f"{late:,} of {rows:,} {what} ({share:.1%}) came more than {result.max_skew_s:g} s "
            f"after a newer one (up to {result.max_lateness_s:,.0f} s): {fate}."
        )
    if result.duplicates:
        warnings.append(
            f"{result.duplicates:,} points repeated a series' window already replayed and were "
            "dropped."
        )
    outside = result.unreplayed
    if outside:
        span = (
            f"{_utc(result.start)} to {_utc(result.start + result.span_s)}"
            if result.start is not None
            else "no history"
        )
        names = "; ".join(label.title for label in outside[:5])
        more = f"; and {len(outside) - 5} more" if len(outside) > 5 else ""
        warnings.append(
            f"{len(outside)} labeled incident(s) lie outside the replayed history ({span}): "
            f"no setting could detect them, so recall leaves them out: {names}{more}."
        )
    return warnings


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def summary_row(result: BacktestResult) -> list[str]:
    """One candidate's headline numbers, as the Markdown and terminal tables show them."""
    return [
        result.candidate.name,
        str(result.alerts),
        str(result.true_positives),
        str(result.false_positives),
        _pct(result.precision),
        _pct(result.recall),
        f"{result.false_alarms_per_day:.2f}",
        _secs(result.median_ttd),
        _secs(result.max_ttd),
    ]


SUMMARY_COLUMNS = (
    "candidate",
    "alerts",
    "TP",
    "FP",
    "prec.",
    "recall",
    "FA/day",
    "TTD med",
    "TTD max",
)
SERIES_COLUMNS = ("series", "kind", "alerts", "TP", "FP", "labels", "detected", "median TTD")


def series_row(row: SeriesStats) -> list[str]:
    ttd = list(row.detections.values())
    return [
        f"{row.service} {row.route}",
        row.kind.value,
        str(row.alerts),
        str(row.true_positives),
        str(row.false_positives),
        str(len(row.labels)),
        str(len(row.detections)),
        _secs(statistics.median(ttd) if ttd else None),
    ]


def render_markdown(results: Sequence[BacktestResult]) -> str:
    """A Markdown report: one summary line per candidate, then each one's busy series."""
    if not results:
        return "No candidates.\n"
    first = results[0]
    lines = [
        "# Backtest",
        "",
        f"{first.days:.2f} days replayed ({first.points} points"
        + (f", {first.events} events" if first.events else "")
        + f", {first.late} late), {len(first.labels)} labeled incident(s).",
        "",
    ]
    for warning in replay_warnings(first):
        lines += [f"> **Warning:** {warning}", ""]
    lines.append(_md_table(SUMMARY_COLUMNS, [summary_row(r) for r in results], left=1))
    for result in results:
        rows = [series_row(s) for s in result.series if s.alerts]
        lines += ["", f"## {result.candidate.name}", ""]
        lines.append(_md_table(SERIES_COLUMNS, rows, left=2) if rows else "No alerts.")
        missed = result.missed
        if missed:
            lines += ["", "Missed: " + "; ".join(label.title for label in missed)]
        if result.unreplayed:
            titles = "; ".join(label.title for label in result.unreplayed)
            lines += ["", "Outside the replayed history (not scored): " + titles]
        if result.actions:
            lines += ["", "| runbook action | proposed | on false alarms |", "|---|---:|---:|"]
            lines += [
                f"| {name} | {n} | {result.actions_on_false_alarms.get(name, 0)} |"
                for name, n in result.actions.items()
            ]
    return "\n".join(lines) + "\n"


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, left: int) -> str:
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if i < left else "---:" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])
