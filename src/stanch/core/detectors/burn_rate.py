"""SLO burn rate over a long and a short window, as in the SRE workbook.

Burn rate is the error ratio divided by the error budget (``1 - objective``): at burn 1 the
budget lasts exactly the SLO period. The detector fires only when *both* windows burn faster
than ``burn_threshold``: the long window proves the burn is significant, the short one that it
is still happening (so the alert clears soon after the fix). Window lengths are in points, so at
1 s points the defaults (3600 / 300) are the workbook's "1 h / 5 m at 14.4x" page.

>>> d = BurnRateDetector(objective=0.99, long_points=60, short_points=5, min_requests=10)
>>> for t in range(60):
...     _ = d.update(float(t), 0.0, 10.0)
>>> s = None
>>> for t in range(60, 120):
...     s = d.update(float(t), 5.0, 10.0)
>>> s.value > 0.5 and s.observed > 14.4
True
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from stanch.core.detectors.base import NO_DATA, Score, squash


class _RollingSum:
    """Errors and requests over roughly the last ``size`` points, in at most ``buckets`` buckets.

    A one-hour window at 1 s points would otherwise keep 7,200 numbers per series; bucketing
    keeps memory constant at the cost of the window's edge moving one bucket at a time.
    """

    STATE: ClassVar[tuple[str, ...]] = (
        "_errors",
        "_served",
        "_fill",
        "_cur_errors",
        "_cur_served",
        "errors",
        "served",
    )
    __slots__ = (
        "_cur_errors",
        "_cur_served",
        "_errors",
        "_fill",
        "_per_bucket",
        "_served",
        "errors",
        "served",
    )

    def __init__(self, size: int, buckets: int = 30) -> None:
        self._per_bucket = max(1, size // buckets)
        count = -(-size // self._per_bucket)
        self._errors: deque[float] = deque(maxlen=count)
        self._served: deque[float] = deque(maxlen=count)
        self._fill = 0
        self._cur_errors = 0.0
        self._cur_served = 0.0
        self.errors = 0.0  # completed buckets only
        self.served = 0.0

    def push(self, errors: float, served: float) -> None:
        self._cur_errors += errors
        self._cur_served += served
        self._fill += 1
        if self._fill < self._per_bucket:
            return
        if len(self._errors) == self._errors.maxlen:
            self.errors -= self._errors[0]
            self.served -= self._served[0]
        self._errors.append(self._cur_errors)
        self._served.append(self._cur_served)
        self.errors += self._cur_errors
        self.served += self._cur_served
        self._fill = 0
        self._cur_errors = 0.0
        self._cur_served = 0.0

    def total_served(self) -> float:
        return self.served + self._cur_served

    def ratio(self) -> float:
        served = self.served + self._cur_served
        return (self.errors + self._cur_errors) / served if served > 0 else 0.0


class BurnRateDetector:
    """Multi-window burn rate; ``observed`` is the long-window burn, ``expected`` the threshold."""

    STATE: ClassVar[tuple[str, ...]] = ("_long", "_short")
    __slots__ = ("_long", "_short", "budget", "burn_threshold", "min_requests", "name", "objective")

    def __init__(
        self,
        *,
        objective: float = 0.99,
        long_points: int = 3600,
        short_points: int = 300,
        burn_threshold: float = 14.4,
        min_requests: int = 50,
        name: str = "burn_rate",
    ) -> None:
        if not 0.0 < objective < 1.0:
            raise ValueError("objective must be between 0 and 1, e.g. 0.999")
        if short_points < 1 or long_points < short_points:
            raise ValueError("need 1 <= short_points <= long_points")
        self.objective = objective
        self.budget = 1.0 - objective
        self.burn_threshold = burn_threshold
        self.min_requests = min_requests
        self.name = name
        self._long = _RollingSum(long_points)
        self._short = _RollingSum(short_points)

    def burn(self) -> tuple[float, float]:
        """Current (long, short) window burn rates."""
        return self._long.ratio() / self.budget, self._short.ratio() / self.budget

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        """``value`` is the number of errors among ``weight`` served requests."""
        if value != value or weight <= 0.0:
            return NO_DATA
        self._long.push(value, weight)
        self._short.push(value, weight)
        if self._short.total_served() <= 1e-9:
            return NO_DATA
        long_burn, short_burn = self.burn()
        warming = self._long.total_served() < self.min_requests
        surprise = 0.0 if warming else min(long_burn, short_burn)
        return Score(
            squash(surprise, self.burn_threshold),
            observed=long_burn,
            expected=self.burn_threshold,
            deviation=surprise,
            warming=warming,
        )
