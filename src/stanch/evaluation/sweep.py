"""The candidates ``stanch tune`` replays, and the recombination of their results.

One pass replays every candidate of a :class:`Sweep`: candidate ``f * size + i`` sets the
``i``-th value of *every* tuned threshold (:data:`DEFAULT_GRID`, plus the values in use) and
the ``f``-th ``fire_after`` (:data:`DEFAULT_FIRE_AFTER`). Because each signal's detector and
hysteresis see only their own series and threshold, the result of any mix of choices per
route and kind is exactly the matching series of those candidates: :func:`recombine`
assembles it, so a proposal is scored without another replay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from stanch.core.alerts import AlertKind
from stanch.core.errors import ValidationError
from stanch.evaluation.backtest_results import (
    BacktestResult,
    Candidate,
    Fire,
    SeriesStats,
    fire_order,
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


Choice = tuple[int, dict[AlertKind, int]]
"""(index into ``fire_after``, threshold index per alert kind) for one route."""


def recombine(
    candidate: Candidate,
    sweep: Sweep,
    results: Sequence[BacktestResult],
    choice: Mapping[str, Choice],
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
