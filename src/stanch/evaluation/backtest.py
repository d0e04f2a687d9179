"""Backtests: replay recorded history through the detectors and score the alerts against labels.

History (request events, or metric points that skip aggregation) is replayed once, whatever
the number of candidate settings: events are bucketed by one :class:`WindowAggregator`, and
each closed point is scored by every candidate's own :class:`SeriesMonitor` for its series.
The monitors of one series share the detectors no candidate's thresholds reach (the ensembles,
the burn-rate windows: :mod:`stanch.evaluation.shared_detectors`), so a sweep of dozens of
candidates costs a few candidates' replay, not dozens. Nothing reads a clock, so a day replays
in about a minute from events, far less from points.

History need not be perfectly sorted: rows up to ``max_skew_s`` (default
:data:`DEFAULT_MAX_SKEW_S`) older than a row before them still land in their own window (events
are held that long before their window closes; points are buffered as long). Logs merged from
several hosts, or written when a request ends rather than when it starts, are out of order by
about that much. Rows later than that are counted: late events are folded into the next open
window, as live ingestion does, and late points are dropped;
:func:`~stanch.evaluation.backtest_results.replay_warnings` says so. An unsorted file cannot be
replayed in bounded memory, so it is reported, not sorted.

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

Replayed days count only *covered* time: the stretches of history with rows, without the gaps
of more than ``max_gap_s`` between them (see :mod:`stanch.evaluation.replay_batches`: such a
gap is missing history, skipped, not silence). One stray row dated years ahead adds a window,
not years, to the days that false alarms per day and ``tune``'s "enough history" rule divide
by; the result counts the gaps and the longest one, and a label inside a gap is outside.

With a runbook, each alert is matched to the actions its rules would have proposed (before the
engine's per-incident de-duplication), counted apart for false alarms: auto actions on false
alarms are what a candidate would have cost.

Result types and their rendering are in :mod:`stanch.evaluation.backtest_results`; turning rows
into time-ordered windows is in :mod:`stanch.evaluation.replay_batches`.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from stanch.core.alerts import Alert, AlertKind
from stanch.core.detection import SeriesMonitor
from stanch.core.errors import ValidationError
from stanch.core.events import RequestEvent
from stanch.core.runbook import Runbook
from stanch.core.series import SERVICE_WIDE, SeriesKey
from stanch.core.windows import Point
from stanch.evaluation.backtest_results import (
    DETECTOR_KINDS,
    BacktestResult,
    Candidate,
    Fire,
    SeriesStats,
    fire_order,
)
from stanch.evaluation.history import Progress, read_events, read_points, sniff_format
from stanch.evaluation.labels import Label
from stanch.evaluation.replay_batches import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_MAX_SKEW_S,
    EventWindows,
    PointOrder,
)
from stanch.evaluation.shared_detectors import DetectorPool

#: The entry points, and the types and defaults their signatures name.
__all__ = [
    "DEFAULT_MAX_GAP_S",
    "DEFAULT_MAX_SKEW_S",
    "DEFAULT_SLACK_S",
    "BacktestResult",
    "Candidate",
    "Replay",
    "backtest_events",
    "backtest_file",
    "backtest_points",
    "matching_labels",
    "require_history",
]

DEFAULT_SLACK_S = 30.0


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
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        if not candidates:
            raise ValueError("a backtest needs at least one candidate")
        self.candidates = tuple(candidates)
        self.labels = tuple(labels)
        self.runbook = runbook
        self.slack_s = slack_s
        self.max_gap_s = max_gap_s
        self.points = 0
        self.duplicates = 0
        self.first_t: float | None = None
        self.last_t_end: float | None = None
        #: The stretches of history with rows, ``(first window start, last window end)``,
        #: oldest first; the last one is still growing.
        self.stretches: list[tuple[float, float]] = []
        self.longest_gap_s = 0.0
        self._monitors: list[dict[SeriesKey, SeriesMonitor]] = [{} for _ in self.candidates]
        self._fires: list[list[Fire]] = [[] for _ in self.candidates]
        self._last_t: dict[SeriesKey, float] = {}
        self._pool = DetectorPool()

    def observe(self, batch: Sequence[Point]) -> None:
        """Score one window's points (all of one ``t``, service-wide points among them)."""
        if batch:
            self._cover(batch[0])
        service_points = {p.key.service: p for p in batch if p.key.route == SERVICE_WIDE}
        for point in batch:
            key = point.key
            last = self._last_t.get(key)
            if last is not None and point.t <= last:
                self.duplicates += 1  # batches come in time order: a series' window seen twice
                continue
            self._last_t[key] = point.t
            self._pool.tick(key)
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

    def _cover(self, point: Point) -> None:
        """Extend the covered stretch to ``point``'s window, or start a new one after a gap."""
        stretches = self.stretches
        t, t_end = point.t, point.t_end
        if not stretches:
            stretches.append((t, t_end))
            return
        start, end = stretches[-1]
        if t_end <= end:
            return
        # Counted in whole windows (starts are multiples of the interval), as EventWindows does.
        empty = max(round((t - end) / point.interval), 0) * point.interval
        if empty > self.max_gap_s:
            self.longest_gap_s = max(self.longest_gap_s, t - end)
            stretches.append((t, t_end))
        else:
            stretches[-1] = (start, t_end)

    @property
    def covered_s(self) -> float:
        """Seconds of history replayed: the stretches with rows, without the gaps between."""
        return sum(end - start for start, end in self.stretches)

    @property
    def gaps(self) -> int:
        return max(len(self.stretches) - 1, 0)

    def _monitor(self, index: int, point: Point) -> SeriesMonitor:
        config = self.candidates[index].config_for(point.key.route)
        if not math.isclose(point.interval, config.interval_s):
            raise ValidationError(
                f"points of {point.key} last {point.interval:g} s but the detection settings "
                f"of candidate {self.candidates[index].name!r} say interval_s={config.interval_s:g}"
            )
        return self._pool.share(SeriesMonitor(point.key, config))

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
        span = self.covered_s
        outside = self._outside()
        return [
            replace(
                self._result(candidate, self._fires[i], span, outside),
                events=events,
                late=late,
                max_skew_s=max_skew_s,
                max_lateness_s=max_lateness_s,
                end=self.last_t_end,
                gaps=self.gaps,
                longest_gap_s=self.longest_gap_s,
                max_gap_s=self.max_gap_s,
            )
            for i, candidate in enumerate(self.candidates)
        ]

    def _outside(self) -> frozenset[int]:
        """Labels no alert of this replay could match: alerts fire within the replayed
        stretches, so a label that overlaps none (before, after or inside a gap) is outside."""
        ends = [end for _, end in self.stretches]
        outside = set()
        for i, label in enumerate(self.labels):
            # The first stretch ending at or after the label's (slackened) start, if any,
            # is the only one that can overlap it.
            j = bisect_left(ends, label.start - self.slack_s)
            if j == len(ends) or self.stretches[j][0] > label.end:
                outside.add(i)
        return frozenset(outside)

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
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[BacktestResult]:
    """Replay request events (in roughly time order) through every candidate, in one pass."""
    windows = EventWindows(
        interval=_interval(candidates), max_skew_s=max_skew_s, max_gap_s=max_gap_s
    )
    replay = Replay(candidates, labels, runbook=runbook, slack_s=slack_s, max_gap_s=max_gap_s)
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
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[BacktestResult]:
    """Replay metric points (in roughly time order) through every candidate, in one pass."""
    order = PointOrder(max_skew_s=max_skew_s)
    replay = Replay(candidates, labels, runbook=runbook, slack_s=slack_s, max_gap_s=max_gap_s)
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
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    progress: Progress | None = None,
) -> list[BacktestResult]:
    """Replay a history file: ``fmt`` is ``"events"`` or ``"points"`` (None: guess from it);
    ``progress`` is told how many bytes of it were read, now and then.

    A file without a single row is refused (ValidationError): scoring nothing would report
    every label as missed and no false alarm, which reads like a result.
    """
    fmt = fmt or sniff_format(path)
    options: dict[str, Any] = {
        "runbook": runbook,
        "slack_s": slack_s,
        "max_skew_s": max_skew_s,
        "max_gap_s": max_gap_s,
    }
    if fmt == "events":
        events = read_events(path, progress=progress)
        results = backtest_events(events, candidates, labels, **options)
    elif fmt == "points":
        points = read_points(path, interval=_interval(candidates), progress=progress)
        results = backtest_points(points, candidates, labels, **options)
    else:
        raise ValidationError(f"unknown history format {fmt!r}; expected events or points")
    require_history(results, f"{path}:1: (file): no {fmt} to replay: the file has no rows")
    return results


def require_history(results: Sequence[BacktestResult], message: str) -> None:
    """ValidationError(``message``) when the replay scored no point at all."""
    if not results or results[0].points == 0:
        raise ValidationError(message)
