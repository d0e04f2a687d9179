"""Tuning: thresholds per route and signal proposed from a backtest, as a reviewable diff.

This module owns the choice. The candidates replayed, and the exact recombination of their
results, are :mod:`stanch.evaluation.sweep`; the settings file (``detection.yaml``: its format,
reading and rendering) is :mod:`stanch.evaluation.detection_file`, though the header of a file
rendered in normal form still names this module as its format.

How :func:`propose` chooses, per route (over all services) and alert kind, from one replay of
a sweep (every threshold of a grid plus the values in use, with every ``fire_after``; the
results recombine exactly per route and kind, see :mod:`stanch.evaluation.sweep`):

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
that resolves to its choice needs no new entry, but an entry the user wrote is never removed
(it pins the route against later changes of the defaults). The proposal is scored by
recombining the replayed results (exact, as above). ``stanch tune --config`` writes it into
the user's own file (:mod:`stanch.evaluation.config_edit`), so its diff applies with
``patch``; without a file, :meth:`Proposal.diff` compares normal forms
(``detection_file.render_detection_config``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from stanch.core.alerts import AlertKind
from stanch.core.detection_config import DetectionConfig, route_config
from stanch.evaluation.backtest_results import (
    BacktestResult,
    Candidate,
    SeriesStats,
    merge_detections,
)
from stanch.evaluation.detection_file import config_diff, render_detection_config
from stanch.evaluation.sweep import TUNED, Choice, Sweep, recombine

DEFAULT_BUDGET: Final = 0.5
#: With no false alarm in ``d`` days, the 95% upper bound of the rate is about ``3 / d``.
ZERO_EVENT_BOUND: Final = 3.0
MIN_HISTORY_DAYS: Final = 1.0


def required_days(budget: float) -> float:
    """Days of history needed before a budget of ``budget`` false alarms a day can be shown
    met, and so before any setting is made more sensitive (``inf`` for a zero budget)."""
    if budget <= 0:
        return math.inf
    return max(MIN_HISTORY_DAYS, ZERO_EVENT_BOUND / budget)


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
    now: dict[str, Choice] = {}
    chosen: dict[str, Choice] = {}
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
        baseline=recombine(baseline, sweep, results, now),
        result=recombine(proposed, sweep, results, chosen),
        budget=budget,
        history_days=days,
        required_days=needed,
    )


def _choose(
    route: str,
    sweep: Sweep,
    cells: Sequence[Mapping[tuple[str, AlertKind], _Cell]],
    now: Choice,
    days: float,
    budget: float,
    can_loosen: bool,
) -> Choice:
    """The route's fire_after and thresholds: each kind picked under each fire_after, then
    the fire_after with the most kinds in budget, most incidents found, fastest, fewest false
    alarms (ties keep the one in use, then the smaller). Without ``can_loosen``, no value
    below the one in use is considered."""
    best: tuple[tuple[Any, ...], Choice] | None = None
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
    becomes the default, and a route that then resolves to its target needs no new entry.
    The user's own entries are kept (updated to their targets), even those the defaults now
    match; entries for routes not replayed are kept as they are (their effective values too).
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
        if route in current.routes or target != route_config(route, defaults, others):
            # An entry of the user's own is kept even when the defaults now give the same:
            # it pins the route, so a later change of defaults must not move it.
            routes[route] = target
        # else: no entry; the route resolves to its target through the defaults or a glob
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
