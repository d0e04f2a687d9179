"""Seasonal baseline: what this series usually does at this time of day, and on this weekday.

Why: traffic at 03:00 is not traffic at 15:00. A flat baseline either pages every morning when
load rises, or is so wide that a real outage at night hides inside it. Here the expectation is a
daily profile (``bins`` slots over ``period`` seconds, each learned online from the points that
fall in it) plus a weekday offset learned from what the daily profile leaves over. The spread is
learned on the residuals, so the score is "how unusual for this time", not "how far from the mean".

Learning is Huber-clipped like :class:`~stanch.core.detectors.robust.RobustBaseline`: an incident
enters the profile only slowly. Memory is fixed: ``bins + 7`` floats and a few scalars.

>>> import random
>>> rng = random.Random(7)
>>> d = SeasonalBaseline(bins=24, warmup=48)
>>> shape = lambda t: 100.0 if (t // 3600) % 24 >= 12 else 10.0
>>> for h in range(24 * 7):
...     _ = d.update(h * 3600.0, shape(h * 3600) + rng.gauss(0, 1))
>>> d.update(24 * 7 * 3600.0 + 13 * 3600, 100.0).value < 0.5  # afternoon high: usual
True
>>> d.update(24 * 7 * 3600.0 + 14 * 3600, 10.0).value > 0.5  # afternoon low: not usual
True
"""

from __future__ import annotations

import math
from typing import ClassVar

from stanch.core.detectors._ew import EwRobust
from stanch.core.detectors.base import NO_DATA, Score, squash

DAY = 86_400.0
WEEK = 7 * DAY


class SeasonalBaseline:
    """Daily profile + weekday offsets; score = robust z of the residual."""

    STATE: ClassVar[tuple[str, ...]] = ("_daily", "_weekly", "_residual", "_last_t")
    __slots__ = (
        "_daily",
        "_last_t",
        "_residual",
        "_weekly",
        "bins",
        "name",
        "period",
        "rate",
        "threshold",
        "weekly",
        "weekly_days",
    )

    def __init__(
        self,
        *,
        period: float = DAY,
        bins: int = 144,
        rate: float = 0.4,
        weekly: bool = True,
        weekly_days: float = 1.0 / 3.0,
        half_life: float = 1000.0,
        warmup: int = 150,
        threshold: float = 6.0,
        clip: float = 3.0,
        name: str = "seasonal",
    ) -> None:
        if period <= 0 or bins < 1 or not 0.0 < rate <= 1.0 or half_life <= 0 or warmup < 1:
            raise ValueError("period, bins, half_life, warmup must be positive; 0 < rate <= 1")
        self.period = period
        self.bins = bins
        self.rate = rate
        self.weekly = weekly
        self.weekly_days = weekly_days
        self.threshold = threshold
        self.name = name
        # NaN marks a slot never seen: a profile must not expect 0 where it knows nothing.
        self._daily = [math.nan] * bins
        self._weekly = [0.0] * 7
        self._residual = EwRobust(1.0 - 0.5 ** (1.0 / half_life), warmup, clip)
        self._last_t = math.nan

    def slot(self, t: float) -> int:
        return int((t % self.period) / self.period * self.bins) % self.bins

    def expected(self, t: float) -> float:
        """The profile's expectation at ``t`` (NaN while that slot has never been seen)."""
        base = self._daily[self.slot(t)]
        if self.weekly:
            base += self._weekly[int(t // DAY) % 7]
        return base

    @property
    def ready(self) -> bool:
        """True once the residual spread has its warm-up behind it."""
        return self._residual.count > self._residual.warmup

    def spread(self) -> float:
        return self._residual.spread()

    def residual_z(self, t: float, value: float) -> tuple[float, float]:
        """``(expected, z)`` of ``value`` at ``t`` without learning; z is NaN for an unseen slot."""
        expected = self.expected(t)
        if expected != expected:
            return expected, math.nan
        return expected, self._residual.z(value - expected)

    def learn(self, t: float, value: float) -> None:
        """Fold ``value`` at ``t`` into the profile, the weekday offset and the residual spread."""
        i = self.slot(t)
        day = int(t // DAY) % 7
        weekly = self._weekly[day] if self.weekly else 0.0
        current = self._daily[i]
        if current != current:
            self._daily[i] = value - weekly
        else:
            r = value - weekly - current
            z = self._residual.z(r)
            self._residual.learn(r, z)
            step = r
            if self.ready:
                step = max(-self._residual.clip, min(self._residual.clip, z)) * self.spread()
            self._daily[i] = current + self.rate * step
            if self.weekly and self._last_t == self._last_t and t > self._last_t:
                # Weekday offsets learn per unit of time, not per point, so 1 s and 5 min
                # series both take about ``weekly_days`` of a weekday to learn their offset;
                # they learn what the (already updated) daily slot still leaves over.
                alpha = min(1.0, (t - self._last_t) / (DAY * self.weekly_days))
                self._weekly[day] += alpha * (1.0 - self.rate) * step
        self._last_t = t

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if value != value or weight <= 0.0:
            return NO_DATA
        expected, z = self.residual_z(t, value)
        warming = z != z or not self.ready
        self.learn(t, value)
        if warming:
            return Score(0.0, value, value if expected != expected else expected, 0.0, True)
        return Score(squash(abs(z), self.threshold), value, expected, z)

    def explain(self, score: Score) -> str:
        """One line a responder can read: what was seen against what this hour usually shows."""
        return (
            f"{score.observed:.4g} vs {score.expected:.4g} usual at this time of day, "
            f"z={score.deviation:+.1f}"
        )
