"""Seasonal baseline: what this series usually does at this time of day, and on this weekday.

Why: traffic at 03:00 is not traffic at 15:00. A flat baseline either pages every morning when
load rises, or is so wide that a real outage at night hides inside it. Here the expectation is a
daily profile (``bins`` slots over ``period`` seconds, each learned online from the points that
fall in it) plus a weekday offset learned from what the daily profile leaves over. The spread is
learned on the residuals, so the score is "how unusual for this time", not "how far from the mean".

The profile learns once per *visit* of a slot (the points of one slot on one day), so what it
learns per day does not depend on how often the series is sampled: a 1 s series and a 5 min
series both move a slot by ``rate`` of a Huber-clipped step per day. (A per-point rate let a
four-minute flood on a 1 s series, 240 points, become "usual at this time of day" within the
flood.) A visit is summarized by the median of its :data:`VISIT_BLOCKS` sub-block means, so a
flood filling a third of a slot's visit does not become that slot's first value either;
a slot never seen has no expectation until its first visit ends. While a visit is under way
its points already count for a slot seen before, as the visit's commit will count them. The
residual spread learns per point. Memory is fixed: ``bins + 7 + VISIT_BLOCKS`` floats and a few
scalars, the slots as a packed ``array("d")`` (8 bytes each, where a list of floats takes 32).

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
from array import array
from typing import ClassVar

from stanch.core.detectors._ew import EwRobust
from stanch.core.detectors.base import NO_DATA, Score, squash

DAY = 86_400.0
WEEK = 7 * DAY
#: Sub-blocks per visit of a slot, by time: the visit's value is the median of their means.
VISIT_BLOCKS = 8


class SeasonalBaseline:
    """Daily profile + weekday offsets; score = robust z of the residual."""

    STATE: ClassVar[tuple[str, ...]] = ("_daily", "_weekly", "_residual", "_visit", "_blocks")
    __slots__ = (
        "_blocks",
        "_daily",
        "_residual",
        "_visit",
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
        rate: float = 0.5,
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
        self._daily = array("d", [math.nan]) * bins
        self._weekly = array("d", [0.0]) * 7
        self._residual = EwRobust(1.0 - 0.5 ** (1.0 / half_life), warmup, clip)
        # The visit being collected, committed to the profile when the next one starts: [its
        # number (t // slot width), current sub-block, that block's sum and count] of values
        # less the weekday offset, and the means of its finished sub-blocks.
        self._visit = [-1.0, 0.0, 0.0, 0.0]
        self._blocks = _no_blocks()

    def slot(self, t: float) -> int:
        return int((t % self.period) / self.period * self.bins) % self.bins

    def expected(self, t: float) -> float:
        """The profile's expectation at ``t`` (NaN while that slot has never been seen).

        A visit not yet committed already counts for a slot seen before, as its commit will
        count it (at most ``rate`` of a clipped step, so a flood stays a surprise): the points
        seen so far in this slot today, or a visit of the same slot no later point committed.
        """
        i = self.slot(t)
        base = self._daily[i]
        if base == base and int(self._visit[0]) % self.bins == i:
            visit = self._visit_value()
            if visit == visit:
                base = self._learned(base, visit)
        if self.weekly:
            base += self._weekly[int(t // DAY) % 7]
        return base

    def _visit_value(self) -> float:
        """The median of the visit's sub-block means so far (NaN: no point yet)."""
        means = [m for m in self._blocks if m == m]
        if self._visit[3]:
            means.append(self._visit[2] / self._visit[3])
        if not means:
            return math.nan
        means.sort()
        mid = len(means) // 2
        return means[mid] if len(means) % 2 else 0.5 * (means[mid - 1] + means[mid])

    def _learned(self, current: float, mean: float) -> float:
        """Slot value ``current`` after learning a visit whose value was ``mean``."""
        if current != current:
            return mean
        return current + self.rate * self._step(mean - current)

    def _step(self, r: float) -> float:
        if not self.ready:
            return r
        # A visit's value is steadier than one point, but a flood that fills much of a visit
        # must still move the slot no faster than one clipped point would.
        limit = self._residual.clip * self.spread()
        return max(-limit, min(limit, r))

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
        """Learn ``value``'s residual spread now; fold it into the profile when its visit ends."""
        width = self.period / self.bins
        visit = self._visit
        number = float(t // width)
        if number != visit[0]:
            if visit[3] or any(m == m for m in self._blocks):
                self._commit(number)
            visit[:] = [number, 0.0, 0.0, 0.0]
            self._blocks = _no_blocks()
        expected = self.expected(t)
        if expected == expected:
            r = value - expected
            self._residual.learn(r, self._residual.z(r))
        block = float(min(VISIT_BLOCKS - 1, int((t - number * width) / width * VISIT_BLOCKS)))
        if block != visit[1] and visit[3]:
            self._blocks[int(visit[1])] = visit[2] / visit[3]
            visit[2] = visit[3] = 0.0
        visit[1] = block
        visit[2] += value - (self._weekly[int(t // DAY) % 7] if self.weekly else 0.0)
        visit[3] += 1.0

    def _commit(self, next_number: float) -> None:
        """Fold the visit into its slot and, with what that leaves over, its weekday offset.

        The offset learns per unit of time, at a pace of ``weekly_days`` of a weekday: the
        visit stands for the time until the next one begins (``next_number``), so an hourly
        series learns its weekdays as fast as a 1 s one.
        """
        number, mean = self._visit[0], self._visit_value()
        i = int(number) % self.bins
        current = self._daily[i]
        self._daily[i] = self._learned(current, mean)
        if self.weekly and current == current:
            width = self.period / self.bins
            span = max(0.0, next_number - number) * width
            alpha = min(1.0, span / (DAY * self.weekly_days))
            day = int(number * width // DAY) % 7
            self._weekly[day] += alpha * (1.0 - self.rate) * self._step(mean - current)

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if not (math.isfinite(value) and 0.0 < weight < math.inf):  # NaN, +-inf: no data
            return NO_DATA
        expected, z = self.residual_z(t, value)
        warming = z != z or not self.ready
        self.learn(t, value)
        if warming:
            return Score(0.0, value, value if expected != expected else expected, 0.0, True)
        return Score(squash(abs(z), self.threshold), value, expected, z)

    def explain(self, score: Score) -> str:
        """One line a responder can read: what was seen against what this hour usually shows."""
        if not score.has_data:
            return "no data: nothing was measured at this point"
        if score.warming:
            return f"{score.observed:.4g} seen; still learning what is usual at this time of day"
        return (
            f"{score.observed:.4g} vs {score.expected:.4g} usual at this time of day, "
            f"z={score.deviation:+.1f}"
        )


def _no_blocks() -> array[float]:
    """The sub-block means of a visit not begun: NaN marks a block without points."""
    return array("d", [math.nan]) * VISIT_BLOCKS
