"""Seasonal baseline: what this series usually does at this time of day, and on this weekday.

Why: traffic at 03:00 is not traffic at 15:00. A flat baseline either pages every morning when
load rises, or is so wide that a real outage at night hides inside it. Here the expectation is a
daily profile (``bins`` slots over ``period`` seconds, each learned online from the points that
fall in it) plus a weekday offset learned from what the daily profile leaves over. The spread is
learned on the residuals, so the score is "how unusual for this time", not "how far from the mean".

**Weekdays as ratios** (``ratio=True``, what the engine's request rate uses): a weekend at a
quarter of the weekdays' traffic is a ratio, and the day's shape shrinks with it; no constant
offset expresses that, and every weekend paged as a traffic drop. With ``ratio`` the
expectation is ``profile x factor[weekday]``, and the profile learns values divided by their
day's factor. A factor is measured once per day, from the ratio of the day's values to the
profile (so an hour's outage barely moves it): the first time a weekday is seen it takes that
ratio, later days move it by half a ratio clipped to 2x. Until its weekday is measured, a day's
values are divided by its running ratio so far, so the first weekend does not drag the profile
down, and after three hours of that day it is expected at that ratio (the first weekend is news
when it starts, not all through it). Once all seven are measured their geometric mean is kept
at 1, the level staying in the profile. A series that ever goes negative is not a rate: it
falls back to offsets. NAB's generic series keep the offsets: ratios cost them 1.7 points.

The profile learns once per *visit* of a slot (the points of one slot on one day), so what it
learns per day does not depend on how often the series is sampled: a 1 s series and a 5 min
series both move a slot by ``rate`` of a Huber-clipped step per day. (A per-point rate let a
four-minute flood on a 1 s series, 240 points, become "usual at this time of day" within the
flood.) A visit is summarized by the median of its :data:`VISIT_BLOCKS` sub-block means, so a
flood filling a third of a slot's visit does not become that slot's first value either;
a slot never seen has no expectation until its first visit ends. While a visit is under way
its points already count for a slot seen before, as the visit's commit will count them. The
residual spread learns per point. Memory is fixed: ``bins + 14 + VISIT_BLOCKS`` floats and a few
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
from stanch.core.detectors.robust import z_text

DAY = 86_400.0
WEEK = 7 * DAY
#: Sub-blocks per visit of a slot, by time: the visit's value is the median of their means.
VISIT_BLOCKS = 8
#: A day's level is measured once at least this much of it had an expectation to compare with.
DAY_COVERAGE = DAY / 3.0
#: One visit stands for at most this much of its day (an hourly series covers its day).
VISIT_SPAN_MAX = 3600.0
#: A day whose weekday is not measured yet is expected at its running ratio to the profile once
#: this much of it has been seen: the first weekend is news at its start, not all through it.
RUNNING_MIN_S = 3 * 3600.0
#: A weekday factor already known moves this share of the day's log ratio, itself clipped to
#: a factor of :data:`FACTOR_CLIP`: a recurring weekend is learned in one week, an outage
#: lasting a whole day moves that weekday by at most a factor of 1.41.
FACTOR_RATE = 0.5
FACTOR_CLIP = 2.0
_LOG_CLIP = math.log(FACTOR_CLIP)
#: The lowest weekday factor (a day with no traffic at all still has a ratio to learn from).
FACTOR_FLOOR = 1.0 / 64.0


class SeasonalBaseline:
    """Daily profile + weekday offsets (or ratios); score = robust z of the residual."""

    STATE: ClassVar[tuple[str, ...]] = (
        "_daily",
        "_weekly",
        "_residual",
        "_visit",
        "_blocks",
        "_factors",
        "_day",
        "_signed",
    )
    __slots__ = (
        "_blocks",
        "_daily",
        "_day",
        "_factors",
        "_residual",
        "_signed",
        "_visit",
        "_weekly",
        "bins",
        "name",
        "period",
        "rate",
        "ratio",
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
        ratio: bool = False,
        name: str = "seasonal",
    ) -> None:
        if period <= 0 or bins < 1 or not 0.0 < rate <= 1.0 or half_life <= 0 or warmup < 1:
            raise ValueError("period, bins, half_life, warmup must be positive; 0 < rate <= 1")
        self.period = period
        self.bins = bins
        self.rate = rate
        self.weekly = weekly
        self.weekly_days = weekly_days
        self.ratio = ratio
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
        # Multiplicative weekday factors (NaN: that weekday not measured yet, taken as 1), the
        # day being measured: [its number (t // DAY), sums over its visits of their value and
        # of the profile, each times the time it stands for, and that time], and whether a
        # negative value was ever seen (then the weekdays are offsets, as for any signal).
        self._factors = array("d", [math.nan]) * 7
        self._day = array("d", [-1.0, 0.0, 0.0, 0.0])
        self._signed = False

    @property
    def multiplicative(self) -> bool:
        """Whether weekdays scale the profile (a non-negative, rate-like series) rather than
        shift it: a weekend at a quarter of the weekdays' traffic is a ratio, and the daily
        shape shrinks with it, which no constant offset can express."""
        return self.weekly and self.ratio and not self._signed

    def factor(self, t: float) -> float:
        """The weekday factor at ``t``: 1 until that weekday has been measured."""
        f = self._factors[int(t // DAY) % 7]
        return f if f == f else 1.0

    def _norm(self, day: int) -> float:
        """What a value on ``day`` (``t // DAY``) is divided by before the profile learns it.

        The weekday's factor once measured; before that, the running ratio of the day so far to
        the profile, so the first weekend does not drag the weekdays' profile down with it.
        """
        f = self._factors[day % 7]
        if f == f:
            return f
        measured = self._day
        if int(measured[0]) != day:
            return 1.0
        # As if one slot at one residual sigma had been seen at ratio 1: noise on a quiet night
        # decides nothing, while a busy day's own ratio counts from its first visit on.
        prior = self.spread() * self.period / self.bins
        if measured[2] + prior <= 0.0:
            return 1.0
        return max(FACTOR_FLOOR, (measured[1] + prior) / (measured[2] + prior))

    def _scale(self, day: int) -> float:
        """What the profile is multiplied by on ``day``: its weekday's factor; for a weekday not
        measured yet, the day's running ratio once :data:`RUNNING_MIN_S` of it was seen."""
        f = self._factors[day % 7]
        if f == f:
            return f
        if int(self._day[0]) == day and self._day[3] >= RUNNING_MIN_S:
            return self._norm(day)
        return 1.0

    def slot(self, t: float) -> int:
        return int((t % self.period) / self.period * self.bins) % self.bins

    def expected(self, t: float) -> float:
        """The profile's expectation at ``t`` (NaN while that slot has never been seen).

        A visit not yet committed already counts for a slot seen before, as its commit will
        count it (at most ``rate`` of a clipped step, so a flood stays a surprise): the points
        seen so far in this slot today, or a visit of the same slot no later point committed.
        """
        if not math.isfinite(t):
            return math.nan
        i = self.slot(t)
        base = self._daily[i]
        multiplicative = self.multiplicative
        if base == base and int(self._visit[0]) % self.bins == i:
            visit = self._visit_value()
            if visit == visit:
                if multiplicative:
                    visit /= self._norm(int(t // DAY))
                base = self._learned(base, visit)
        if multiplicative:
            return base * self._scale(int(t // DAY))
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
        if not (math.isfinite(t) and math.isfinite(value)):
            return  # no data: nothing to learn
        if value < 0.0 and not self._signed:
            self._signed = True  # not a rate: weekdays are offsets from here on
            self._factors = array("d", [math.nan]) * 7
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
        additive = self.weekly and not self.multiplicative
        visit[2] += value - (self._weekly[int(t // DAY) % 7] if additive else 0.0)
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
        width = self.period / self.bins
        span = max(0.0, next_number - number) * width
        if self.multiplicative:
            day = int(number * width // DAY)
            if current == current:
                self._measure(day, mean, current, min(span, VISIT_SPAN_MAX))
            self._daily[i] = self._learned(current, mean / self._norm(day))
            return
        self._daily[i] = self._learned(current, mean)
        if self.weekly and current == current:
            alpha = min(1.0, span / (DAY * self.weekly_days))
            day = int(number * width // DAY) % 7
            self._weekly[day] += alpha * (1.0 - self.rate) * self._step(mean - current)

    def _measure(self, day: int, value: float, profile: float, span: float) -> None:
        """Add a visit of ``day`` (its raw value, the profile's value before learning it, the
        time it stands for) to that day's measure; a new day first closes the one before."""
        measured = self._day
        if int(measured[0]) != day:
            self._close_day()
            measured[0], measured[1], measured[2], measured[3] = float(day), 0.0, 0.0, 0.0
        measured[1] += value * span
        measured[2] += profile * span
        measured[3] += span

    def _close_day(self) -> None:
        """Learn the measured day's weekday factor from its ratio to the profile.

        Once per day, from the whole day, so an hour's outage barely moves it. A weekday seen
        for the first time takes the ratio as it is (nothing else is known about it); later
        days move it by :data:`FACTOR_RATE` of a ratio clipped to :data:`FACTOR_CLIP`.
        """
        day, value, profile, covered = self._day
        if day < 0.0 or covered < DAY_COVERAGE or not profile > 0.0:
            return
        ratio = max(FACTOR_FLOOR, value / profile)
        factors = self._factors
        i = int(day) % 7
        current = factors[i]
        if current != current:
            factors[i] = ratio
        else:
            step = max(-_LOG_CLIP, min(_LOG_CLIP, math.log(ratio / current)))
            factors[i] = max(FACTOR_FLOOR, current * math.exp(FACTOR_RATE * step))
        if all(f == f for f in factors):
            # Profile times factor is what is learned; either alone could drift while the
            # product stays right. A geometric mean of 1 pins the factors, the profile keeps
            # the level (and its clipped steps stay in the series' own units).
            mean = math.exp(sum(math.log(f) for f in factors) / 7.0)
            for k in range(7):
                factors[k] /= mean
            daily = self._daily
            for k in range(self.bins):
                daily[k] *= mean

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if not (math.isfinite(t) and math.isfinite(value) and 0.0 < weight < math.inf):
            return NO_DATA  # NaN, +-inf (a value or a timestamp): no data
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
            f"{z_text(score.deviation)}"
        )


def _no_blocks() -> array[float]:
    """The sub-block means of a visit not begun: NaN marks a block without points."""
    return array("d", [math.nan]) * VISIT_BLOCKS
