"""What a backtest found, and how it reads: candidates, scored results, warnings and tables.

The tuner, the CLI and the benchmark consume results without replaying anything, so the result
model and its rendering live apart from the replay that produces them; a change to how results
are shown then touches neither the scoring nor the windowing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from stanch.core.alerts import AlertKind
from stanch.core.detection_config import DetectionConfig, route_config
from stanch.core.series import SERVICE_WIDE
from stanch.evaluation.history import format_utc
from stanch.evaluation.labels import Label
from stanch.evaluation.replay_batches import DEFAULT_MAX_GAP_S, DEFAULT_MAX_SKEW_S

DAY_S = 86_400.0
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
    end: float | None = None  # last window end replayed (``span_s`` leaves the gaps out)
    gaps: int = 0  # stretches of more than ``max_gap_s`` without rows, skipped
    longest_gap_s: float = 0.0
    max_gap_s: float = DEFAULT_MAX_GAP_S

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
    if result.gaps:
        warnings.append(
            f"the history has {result.gaps:,} gap(s) of more than {_span(result.max_gap_s)} "
            f"without rows (the longest {_span(result.longest_gap_s)}): taken for missing "
            "history and skipped, not replayed as silence, and left out of the days replayed "
            f"({result.days:,.2f} covered of {_whole_days(result)} from first to last row)."
        )
    warnings.extend(unmatched_labels(result))
    outside = result.unreplayed
    if outside:
        span = (
            f"{_utc(result.start)} to {_utc(result.end)}"
            + (f" with {result.gaps:,} gap(s)" if result.gaps else "")
            if result.start is not None and result.end is not None
            else "no history"
        )
        names = "; ".join(label.title for label in outside[:5])
        more = f"; and {len(outside) - 5} more" if len(outside) > 5 else ""
        warnings.append(
            f"{len(outside)} labeled incident(s) lie outside the replayed history ({span}): "
            f"no setting could detect them, so recall leaves them out: {names}{more}."
        )
    return warnings


def unmatched_labels(result: BacktestResult) -> list[str]:
    """A warning per label naming a service, or a route, that no series of the history has.

    Such a label counts as missed whatever the settings (or, for a route, can only be found by
    a service-wide alert), which reads as a detector's failure when it is most often a typo or
    the wrong labels file: so it is named, with where it is written and what the history has.
    """
    routes: dict[str, set[str]] = {}
    for row in result.series:
        routes.setdefault(row.service, set()).add(row.route)
    warnings = []
    for label in result.labels:
        where = f"{label.where}: " if label.where else ""
        own = routes.get(label.service)
        if own is None:
            warnings.append(
                f"{where}label {label.title!r} names service {label.service!r}, which has no "
                f"series in the history (it has {_some(routes)}): no alert can match it, so it "
                "counts as missed."
            )
        elif label.route is not None and not any(
            route != SERVICE_WIDE and fnmatchcase(route, label.route) for route in own
        ):
            warnings.append(
                f"{where}label {label.title!r} names route {label.route!r}, which matches no "
                f"series of {label.service} in the history (it has "
                f"{_some(own - {SERVICE_WIDE})}): only a service-wide alert can match it."
            )
    return warnings


def _some(names: Iterable[str], limit: int = 5) -> str:
    """Up to ``limit`` of ``names``, sorted, and how many more ("none" when there are none)."""
    ordered = sorted(names)
    if not ordered:
        return "none"
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(repr(n) for n in ordered[:limit]) + more


def coverage(result: BacktestResult) -> str:
    """The replayed (covered) time, and the wall-clock span around it when gaps were skipped."""
    if not result.gaps:
        return f"{result.days:.2f} days"
    return (
        f"{result.days:.2f} days (covered, of {_whole_days(result)} from first to last row: "
        f"{result.gaps:,} gap(s) skipped, the longest {_span(result.longest_gap_s)})"
    )


def _whole_days(result: BacktestResult) -> str:
    if result.start is None or result.end is None:
        return "0"
    return f"{(result.end - result.start) / DAY_S:,.2f}"


def _span(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable: ``45 s``, ``30 min``, ``2.5 d``."""
    for unit, size in (("d", DAY_S), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.0f} s"


def _utc(ts: float) -> str:
    return format_utc(ts)


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
        f"{coverage(first)} replayed ({first.points} points"
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
