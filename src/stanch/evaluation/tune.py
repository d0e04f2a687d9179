"""Tuning: thresholds per route and signal proposed from a backtest, as a reviewable diff.

The detector configuration file (``detection.yaml``), read by :func:`load_detection_config`::

    detection:
      defaults:                  # any DetectionConfig field; missing ones keep their default
        fire_after: 3            # points in a row over threshold before an alert fires
        spike_threshold: 6.0     # the z-like surprise that scores 0.5 (see DetectionConfig)
        detector: ensemble       # what scores rate and latency: ensemble (default) or robust
        warmup_s: 2m             # *_s fields take seconds or durations ("30s", "2m", "1h")
      routes:                    # optional overrides, each on top of ``defaults``
        "GET /search":           # an exact route key ...
          spike_threshold: 4.0
        "GET /products*":        # ... or a glob (case-sensitive), tried in file order ...
          latency_threshold: 8.0
        "*":                     # ... or "*": the service-wide series (not "every route")
          fire_after: 2

A series takes its exact route key, else the first glob that matches it, else ``defaults``;
entries do not stack. ``interval_s`` is global (the aggregation window), so only ``defaults``
may set it. Other top-level keys are ignored, so the section can live in a larger file.

How :func:`propose` chooses, per route (over all services) and alert kind: every threshold
of a grid (:data:`DEFAULT_GRID`, plus the values in use) is replayed with every
``fire_after`` (:data:`DEFAULT_FIRE_AFTER`) in one pass. Because each signal's detector and
hysteresis see only their own series and threshold, candidate ``i`` sets the ``i``-th value of
*every* threshold at once, and per-(route, kind) results can be recombined exactly. Then:

- settings whose false alarms per day exceed ``budget`` (per route and kind) are out;
- when some setting in budget finds labeled incidents, the winner finds the most, then the
  fastest (sum of times to detect), then with the fewest false alarms (extra sensitivity that
  buys nothing is not taken), then the most sensitive;
- when none does (no labels for this route and kind, or none it can see), there is no
  evidence for change: the value in use stays if it meets the budget, else the nearest that
  does;
- when nothing meets the budget, the least sensitive setting is proposed, flagged;
- ``fire_after`` is one per route, so the route's signals are chosen under each value and the
  value with the most signals in budget, then most incidents found, fastest, fewest false
  alarms wins (ties keep the value in use);
- nothing is loosened (no threshold or ``fire_after`` lowered) from history shorter than
  :func:`required_days`: with no false alarm in ``d`` days, rates up to ``3 / d`` a day are
  still plausible (the 95% Poisson bound, "rule of three"), so only ``d >= 3 / budget`` shows
  a budget is met; and never under one day, which would miss the daily cycle's quiet night
  and morning ramp. Tightening needs no such wait: false alarms seen are evidence enough.

A value every replayed route agrees on becomes the default (routes outside the history then
take it too: the diff shows it; from short history, only a raised default is taken); a route
that resolves to its choice needs no entry. The proposal is scored by recombining the replayed
results (exact, as above). ``stanch tune --config`` writes it into the user's own file
(:mod:`stanch.evaluation.config_edit`), so its diff applies with ``patch``; without a file,
:meth:`Proposal.diff` compares normal forms (:func:`render_detection_config`).
"""

from __future__ import annotations

import difflib
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

import yaml

from stanch.core.alerts import AlertKind
from stanch.core.detection import DETECTORS, DetectionConfig, route_config
from stanch.core.durations import parse_duration
from stanch.core.errors import ValidationError
from stanch.evaluation.backtest_results import (
    BacktestResult,
    Candidate,
    Fire,
    SeriesStats,
    fire_order,
    merge_detections,
)

#: The threshold each tuned alert kind is scored against.
TUNED: Final[dict[AlertKind, str]] = {
    AlertKind.TRAFFIC_SPIKE: "spike_threshold",
    AlertKind.TRAFFIC_DROP: "drop_threshold",
    AlertKind.ERROR_BURST: "error_threshold",
    AlertKind.SLO_BURN: "burn_threshold",
    AlertKind.LATENCY_SPIKE: "latency_threshold",
}
DEFAULT_GRID: Final[dict[str, tuple[float, ...]]] = {
    "spike_threshold": (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0),
    "drop_threshold": (2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0),
    "error_threshold": (4.0, 5.0, 6.0, 7.0, 9.0, 11.0, 14.0),
    "burn_threshold": (6.0, 8.0, 10.0, 14.4, 20.0, 28.0, 40.0),
    "latency_threshold": (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0),
}
DEFAULT_FIRE_AFTER: Final = (1, 2, 3, 5)
DEFAULT_BUDGET: Final = 0.5
#: With no false alarm in ``d`` days, the 95% upper bound of the rate is about ``3 / d``.
ZERO_EVENT_BOUND: Final = 3.0
MIN_HISTORY_DAYS: Final = 1.0

_FIELDS: Final = {f.name: f.type for f in fields(DetectionConfig)}
_AT_LEAST_ZERO: Final = frozenset(
    {
        "min_rate_change",
        "min_spike_rps",
        "error_min_ratio",
        "error_p_floor",
        "error_min_errors",
        "latency_min_change",
        "latency_min_samples",
    }
)
_HEADER: Final = "# Stanch detector settings; format: stanch.evaluation.tune.\n"


# --------------------------------------------------------------------------- the file


def coerce_setting(name: str, value: object) -> float | int | str:
    """``value`` checked for DetectionConfig field ``name``; raises ValueError saying why."""
    kind = _FIELDS.get(name)
    if kind is None:
        raise ValueError(f"unknown setting; expected one of {', '.join(sorted(_FIELDS))}")
    if name == "detector":
        if value not in DETECTORS:
            raise ValueError(f"expected one of {', '.join(DETECTORS)}, got {value!r}")
        return str(value)
    if isinstance(value, str) and name.endswith("_s"):
        return parse_duration(value)
    if kind == "int":
        if type(value) is not int:
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < (0 if name in _AT_LEAST_ZERO else 1):
            raise ValueError(f"must be at least {0 if name in _AT_LEAST_ZERO else 1}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and name not in _AT_LEAST_ZERO):
        raise ValueError(f"must be {'>= 0' if name in _AT_LEAST_ZERO else '> 0'}, got {value}")
    if name in ("slo_objective", "error_min_ratio") and number >= 1:
        raise ValueError(f"must be below 1, got {value}")
    return number


def parse_detection_config(
    text: str, filename: str = "<detection>"
) -> tuple[DetectionConfig, dict[str, DetectionConfig]]:
    """(defaults, route key or glob -> settings) from YAML text; ValidationError names the
    line and field of the first problem."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ValidationError(f"{filename}:{line}: (yaml): {exc.problem or 'invalid'}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ValidationError(f"{filename}:1: (yaml): {str(exc)[:120]}") from None
    finally:
        loader.dispose()

    def fail(path: tuple[str, ...], message: str) -> ValidationError:
        return ValidationError(f"{filename}:{_line_of(root, path)}: {'.'.join(path)}: {message}")

    if not isinstance(data, dict) or not isinstance(data.get("detection"), dict):
        raise fail(("detection",), "expected a mapping with defaults and routes")
    section: dict[Any, Any] = data["detection"]
    for key in section:
        if key not in ("defaults", "routes"):
            raise fail(("detection", str(key)), "unknown key; expected defaults or routes")

    def settings(path: tuple[str, ...], value: object) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail(path, "expected a mapping of settings")
        out: dict[str, Any] = {}
        for name, raw in value.items():
            if name == "interval_s" and path[1] == "routes":
                raise fail((*path, name), "interval_s is global; set it under defaults")
            try:
                out[str(name)] = coerce_setting(str(name), raw)
            except ValueError as exc:
                raise fail((*path, str(name)), str(exc)) from None
        return out

    def build(
        path: tuple[str, ...], value: object, base: DetectionConfig | None
    ) -> DetectionConfig:
        given = settings(path, value)
        try:
            return DetectionConfig(**given) if base is None else replace(base, **given)
        except (TypeError, ValueError) as exc:  # a setting, or a combination, it refused
            raise fail(path, str(exc)) from None

    defaults = build(("detection", "defaults"), section.get("defaults"), None)
    routes_raw = section.get("routes") or {}
    if not isinstance(routes_raw, dict):
        raise fail(("detection", "routes"), "expected a mapping of route key -> settings")
    routes = {
        str(route): build(("detection", "routes", str(route)), value, defaults)
        for route, value in routes_raw.items()
    }
    return defaults, routes


def load_detection_config(path: str | Path) -> tuple[DetectionConfig, dict[str, DetectionConfig]]:
    """(defaults, route key or glob -> settings) from a detection YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"{path}:1: (file): cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}:1: (file): not valid UTF-8") from None
    return parse_detection_config(text, str(path))


def _line_of(root: yaml.Node | None, path: tuple[str, ...]) -> int:
    line = 1 if root is None else root.start_mark.line + 1
    node = root
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            break
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                node, line = value, key.start_mark.line + 1
                break
        else:
            break
    return line


def setting_names() -> tuple[str, ...]:
    """Every DetectionConfig setting, in declaration order (the order files are written in)."""
    return tuple(_FIELDS)


def normal_section(
    defaults: DetectionConfig, routes: Mapping[str, DetectionConfig]
) -> dict[str, Any]:
    """The ``detection`` section in normal form: every default spelled out, route entries as
    their differences from the defaults."""
    base = {name: getattr(defaults, name) for name in _FIELDS}
    return {
        "defaults": base,
        "routes": {
            route: {n: getattr(c, n) for n in _FIELDS if getattr(c, n) != base[n]}
            for route, c in routes.items()
        },
    }


def render_detection_config(
    defaults: DetectionConfig, routes: Mapping[str, DetectionConfig]
) -> str:
    """The configuration in normal form (see :func:`normal_section`), as a whole file.
    ``parse_detection_config`` reads it back unchanged."""
    doc = {"detection": normal_section(defaults, routes)}
    return _HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)


def config_diff(before: str, after: str, *, before_name: str, after_name: str) -> str:
    """A unified diff from ``before`` to ``after`` ("" when they are the same) that ``patch``
    and ``git apply`` take: a last line without a newline is marked as such."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=before_name,
        tofile=after_name,
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def required_days(budget: float) -> float:
    """Days of history needed before a budget of ``budget`` false alarms a day can be shown
    met, and so before any setting is made more sensitive (``inf`` for a zero budget)."""
    if budget <= 0:
        return math.inf
    return max(MIN_HISTORY_DAYS, ZERO_EVENT_BOUND / budget)


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True, slots=True)
class Sweep:
    """The candidates to replay; candidate ``f * size + i`` sets threshold ``i`` of every
    list (the last value once a list runs out) and ``fire_after[f]``."""

    current: Candidate
    values: Mapping[str, tuple[float, ...]]
    fire_after: tuple[int, ...]
    candidates: tuple[Candidate, ...]

    @property
    def size(self) -> int:
        return max(len(v) for v in self.values.values())

    def value(self, param: str, i: int) -> float:
        values = self.values[param]
        return values[min(i, len(values) - 1)]

    def index_of(self, param: str, value: float) -> int:
        return next(i for i in range(self.size) if self.value(param, i) == value)


def make_sweep(
    current: Candidate,
    *,
    grid: Mapping[str, Sequence[float]] | None = None,
    fire_after: Sequence[int] = DEFAULT_FIRE_AFTER,
) -> Sweep:
    """Candidates around ``current``: its own values always among those tried."""
    unknown = set(grid or {}) - set(TUNED.values())
    if unknown:
        raise ValidationError(
            f"cannot tune {', '.join(sorted(unknown))}; tunable: {', '.join(TUNED.values())}"
        )
    configs = [current.defaults, *current.routes.values()]
    values = {
        param: tuple(
            sorted(
                {float(v) for v in (grid or {}).get(param, DEFAULT_GRID[param])}
                | {float(getattr(c, param)) for c in configs}
            )
        )
        for param in TUNED.values()
    }
    fires = tuple(sorted({*fire_after, *(c.fire_after for c in configs)}))
    size = max(len(v) for v in values.values())
    candidates = []
    for f in fires:
        for i in range(size):
            changes: dict[str, Any] = {p: v[min(i, len(v) - 1)] for p, v in values.items()}
            changes["fire_after"] = f
            name = f"fire_after={f} " + " ".join(f"{p}={changes[p]:g}" for p in values)
            candidates.append(
                Candidate(
                    name,
                    replace(current.defaults, **changes),
                    {r: replace(c, **changes) for r, c in current.routes.items()},
                )
            )
    return Sweep(current, values, fires, tuple(candidates))


@dataclass(frozen=True, slots=True)
class SignalProposal:
    """What :func:`propose` chose for one route and alert kind, and why."""

    route: str
    kind: AlertKind
    param: str
    current: float
    proposed: float
    current_fire_after: int
    fire_after: int
    labels: int
    detected: int
    current_detected: int
    false_alarms_per_day: float
    current_false_alarms_per_day: float
    median_ttd: float | None
    budget_met: bool
    reason: str
    #: What the evidence alone would have lowered the threshold / the route's fire_after to,
    #: when the history was too short to allow it (None: nothing held back).
    wanted: float | None = None
    wanted_fire_after: int | None = None

    @property
    def held(self) -> bool:
        return self.wanted is not None or self.wanted_fire_after is not None

    @property
    def changed(self) -> bool:
        return self.current != self.proposed or self.current_fire_after != self.fire_after


@dataclass(frozen=True, slots=True)
class Proposal:
    """Proposed settings, the per-signal choices, and both configurations' scores."""

    current: Candidate
    proposed: Candidate
    signals: tuple[SignalProposal, ...]
    baseline: BacktestResult
    result: BacktestResult
    budget: float
    history_days: float = math.inf
    required_days: float = 0.0

    @property
    def can_loosen(self) -> bool:
        """Whether the history was long enough to lower thresholds (see :func:`required_days`)."""
        return self.history_days >= self.required_days

    @property
    def held(self) -> tuple[SignalProposal, ...]:
        """Signals the evidence would have made more sensitive, kept as they are."""
        return tuple(s for s in self.signals if s.held)

    def yaml(self) -> str:
        return render_detection_config(self.proposed.defaults, self.proposed.routes)

    def diff(self, *, before_name: str = "defaults", after_name: str = "proposed") -> str:
        before = render_detection_config(self.current.defaults, self.current.routes)
        return config_diff(before, self.yaml(), before_name=before_name, after_name=after_name)


@dataclass(frozen=True, slots=True)
class _Cell:
    """One (route, kind) under one candidate, over every service."""

    alerts: int
    false_positives: int
    labels: frozenset[int]
    detections: Mapping[int, float]


def _cells(result: BacktestResult) -> dict[tuple[str, AlertKind], _Cell]:
    grouped: dict[tuple[str, AlertKind], list[SeriesStats]] = {}
    for row in result.series:
        grouped.setdefault((row.route, row.kind), []).append(row)
    return {
        key: _Cell(
            alerts=sum(r.alerts for r in rows),
            false_positives=sum(r.false_positives for r in rows),
            labels=frozenset().union(*(r.labels for r in rows)),
            detections=merge_detections(r.detections for r in rows),
        )
        for key, rows in grouped.items()
    }


_Choice = tuple[int, dict[AlertKind, int]]
"""(index into ``fire_after``, threshold index per alert kind) for one route."""


def propose(
    sweep: Sweep, results: Sequence[BacktestResult], *, budget: float = DEFAULT_BUDGET
) -> Proposal:
    """The proposal from the replayed ``sweep`` (``results`` in ``sweep.candidates`` order)."""
    if len(results) != len(sweep.candidates):
        raise ValueError("results must match the sweep's candidates one to one")
    days = results[0].days
    needed = required_days(budget)
    can_loosen = days >= needed
    cells = [_cells(r) for r in results]
    current = sweep.current
    now: dict[str, _Choice] = {}
    chosen: dict[str, _Choice] = {}
    signals: list[SignalProposal] = []
    for route in sorted({route for route, _ in cells[0]}):
        config = current.config_for(route)
        now[route] = (
            sweep.fire_after.index(config.fire_after),
            {k: sweep.index_of(p, getattr(config, p)) for k, p in TUNED.items()},
        )
        chosen[route] = _choose(route, sweep, cells, now[route], days, budget, can_loosen)
        (f_now, i_now), (f, i_new) = now[route], chosen[route]
        # What the evidence alone would choose; differs only when loosening is refused.
        free = (
            chosen[route]
            if can_loosen
            else _choose(route, sweep, cells, now[route], days, budget, True)
        )
        for kind, param in TUNED.items():
            was = cells[f_now * sweep.size + i_now[kind]][(route, kind)]
            new = cells[f * sweep.size + i_new[kind]][(route, kind)]
            reason = _reason(was, new, i_new[kind] == i_now[kind], days, budget)
            wanted = sweep.value(param, free[1][kind]) if free[1][kind] < i_now[kind] else None
            wanted_fire_after = sweep.fire_after[free[0]] if free[0] < f_now else None
            if not can_loosen and (wanted is not None or wanted_fire_after is not None):
                reason = _held_reason(param, wanted, wanted_fire_after, days, budget)
            else:
                wanted = wanted_fire_after = None
            signals.append(
                SignalProposal(
                    route=route,
                    kind=kind,
                    param=param,
                    current=sweep.value(param, i_now[kind]),
                    proposed=sweep.value(param, i_new[kind]),
                    current_fire_after=sweep.fire_after[f_now],
                    fire_after=sweep.fire_after[f],
                    labels=len(new.labels),
                    detected=len(new.detections),
                    current_detected=len(was.detections),
                    false_alarms_per_day=_per_day(new.false_positives, days),
                    current_false_alarms_per_day=_per_day(was.false_positives, days),
                    median_ttd=statistics.median(new.detections.values())
                    if new.detections
                    else None,
                    budget_met=_per_day(new.false_positives, days) <= budget,
                    reason=reason,
                    wanted=wanted,
                    wanted_fire_after=wanted_fire_after,
                )
            )
    targets: dict[str, DetectionConfig] = {}
    for route, (f, picks) in chosen.items():
        changes: dict[str, Any] = {TUNED[k]: sweep.value(TUNED[k], i) for k, i in picks.items()}
        changes["fire_after"] = sweep.fire_after[f]
        targets[route] = replace(current.config_for(route), **changes)
    proposed = _settle(current, targets, can_loosen=can_loosen)
    baseline = Candidate("current", current.defaults, current.routes)
    return Proposal(
        current=current,
        proposed=proposed,
        signals=tuple(signals),
        baseline=_recombine(baseline, sweep, results, now),
        result=_recombine(proposed, sweep, results, chosen),
        budget=budget,
        history_days=days,
        required_days=needed,
    )


def _choose(
    route: str,
    sweep: Sweep,
    cells: Sequence[Mapping[tuple[str, AlertKind], _Cell]],
    now: _Choice,
    days: float,
    budget: float,
    can_loosen: bool,
) -> _Choice:
    """The route's fire_after and thresholds: each kind picked under each fire_after, then
    the fire_after with the most kinds in budget, most incidents found, fastest, fewest false
    alarms (ties keep the one in use, then the smaller). Without ``can_loosen``, no value
    below the one in use is considered."""
    best: tuple[tuple[Any, ...], _Choice] | None = None
    for f in range(0 if can_loosen else now[0], len(sweep.fire_after)):
        column = [cells[f * sweep.size + i] for i in range(sweep.size)]
        picks = {
            kind: _pick(
                [c[(route, kind)] for c in column],
                now[1][kind],
                days,
                budget,
                lowest=0 if can_loosen else now[1][kind],
            )
            for kind in TUNED
        }
        picked = [column[i][(route, kind)] for kind, i in picks.items()]
        found = merge_detections(c.detections for c in picked)
        score = (
            sum(_per_day(c.false_positives, days) <= budget for c in picked),
            len(found),
            -sum(found.values()),
            -sum(c.false_positives for c in picked),
            f == now[0],
            -f,
        )
        if best is None or score > best[0]:
            best = (score, (f, picks))
    assert best is not None  # sweep.fire_after is never empty
    return best[1]


def _settle(
    current: Candidate, targets: Mapping[str, DetectionConfig], *, can_loosen: bool = True
) -> Candidate:
    """The fewest entries that give each route its target: a value every route agrees on
    becomes the default, and a route that then resolves to its target needs no entry.
    Entries for routes not replayed are kept as they are (their effective values too).
    Without ``can_loosen`` no default is lowered: routes outside the history would take it."""
    defaults = current.defaults
    for param in ("fire_after", *TUNED.values()):
        agreed = {getattr(t, param) for t in targets.values()}
        if len(agreed) == 1:
            value = agreed.pop()
            if can_loosen or value >= getattr(defaults, param):
                defaults = replace(defaults, **{param: value})
    routes = dict(current.routes)
    for route, target in targets.items():
        others = {r: c for r, c in routes.items() if r != route}
        if target == route_config(route, defaults, others):
            routes.pop(route, None)
        else:
            routes[route] = target
    return Candidate("proposed", defaults, routes)


def _per_day(count: int, days: float) -> float:
    return count / days if days > 0 else 0.0


def _pick(options: list[_Cell], now: int, days: float, budget: float, *, lowest: int = 0) -> int:
    """The index of the chosen threshold among ``options`` (ordered by sensitivity), at
    ``lowest`` or above."""
    feasible = [
        i
        for i, c in enumerate(options)
        if i >= lowest and _per_day(c.false_positives, days) <= budget
    ]
    if not feasible:
        return len(options) - 1
    if any(options[i].detections for i in feasible):
        return max(
            feasible,
            key=lambda i: (
                len(options[i].detections),
                -sum(options[i].detections.values()),
                -options[i].false_positives,
                -i,
            ),
        )
    return min(feasible, key=lambda i: (abs(i - now), -i))


def _held_reason(
    param: str, wanted: float | None, wanted_fire_after: int | None, days: float, budget: float
) -> str:
    """Why a setting the evidence would have made more sensitive was kept."""
    lowered = [f"{param} to {wanted:g}"] if wanted is not None else []
    if wanted_fire_after is not None:
        lowered.append(f"fire_after to {wanted_fire_after}")
    return (
        f"kept: {days:.2f} days of history cannot show that {budget:g} false alarms/day is met "
        f"(needs {required_days(budget):g}); the evidence alone would lower {' and '.join(lowered)}"
    )


def _reason(now: _Cell, new: _Cell, kept: bool, days: float, budget: float) -> str:
    fa = _per_day(new.false_positives, days)
    if fa > budget:
        return f"over budget even at the least sensitive setting ({fa:.2f} false alarms/day)"
    if new.detections:
        ttd = sorted(new.detections.values())
        found = f"finds {len(new.detections)}/{len(new.labels)} labeled incident(s)"
        if ttd:
            found += f", median {ttd[len(ttd) // 2]:.0f} s after onset"
        return f"{found}; {fa:.2f} false alarms/day"
    why = "no labeled incident" if not new.labels else "finds no labeled incident at any setting"
    if kept:
        return f"{why}; kept ({fa:.2f} false alarms/day)"
    return (
        f"{why}; {_per_day(now.false_positives, days):.2f} false alarms/day now, {fa:.2f} proposed"
    )


def _recombine(
    candidate: Candidate,
    sweep: Sweep,
    results: Sequence[BacktestResult],
    choice: Mapping[str, _Choice],
) -> BacktestResult:
    """The result ``candidate`` would get, assembled from the replayed candidates' series."""
    wanted: dict[int, set[tuple[str, AlertKind]]] = {}
    for route, (f, picks) in choice.items():
        for kind, i in picks.items():
            wanted.setdefault(f * sweep.size + i, set()).add((route, kind))
    fires: list[Fire] = []
    rows: list[SeriesStats] = []
    for index, keys in wanted.items():
        source = results[index]
        rows.extend(r for r in source.series if (r.route, r.kind) in keys)
        fires.extend(f for f in source.fires if (f.route, f.kind) in keys)
    first = results[0]
    order = {(r.service, r.route, r.kind): n for n, r in enumerate(first.series)}
    rows.sort(key=lambda r: order[(r.service, r.route, r.kind)])
    fires.sort(key=fire_order)
    actions: dict[str, int] = {}
    on_false: dict[str, int] = {}
    for fire in fires:
        for name in fire.actions:
            actions[name] = actions.get(name, 0) + 1
            if fire.is_false_alarm:
                on_false[name] = on_false.get(name, 0) + 1
    return replace(
        first,
        candidate=candidate,
        fires=tuple(fires),
        series=tuple(rows),
        actions=dict(sorted(actions.items())),
        actions_on_false_alarms=dict(sorted(on_false.items())),
    )
