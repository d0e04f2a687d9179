"""The default detector: robust and seasonal baselines, multi-scale shifts, novelty, one alarm.

How it decides, and why each step is there (each was kept because it moved the NAB score and
held up when settings were chosen on other categories; see ``bench/results/detection.md``):

1. **Two expectations, the better one wins.** A flat robust level (EW, Huber-clipped) and a
   :class:`~stanch.core.detectors.seasonal.SeasonalBaseline`. The residual of whichever has the
   smaller learned spread is used, so a daily square wave is judged against its profile (its
   edges are normal) while a noisy flat series is judged against its level.
2. **Several time scales.** The mean residual over the last 1, 6 and 24 points is scored against
   its own learned spread: a spike shows at scale 1, a modest level shift at 24, where the noise
   has averaged out. This is the change-point part of the ensemble: a windowed mean shift test
   that adapts to autocorrelation because each scale learns its own spread.
3. **Novelty, not just size, per scale.** Each scale's z-score is divided by that scale's
   *runner-up record* (plus ``margin``): the second-largest block maximum of its past z-scores,
   decaying slowly. A series that spikes daily learns that spikes are normal for it; a calm
   series alarms on its first real excursion. Per scale, so a one-point spike does not hide a
   later level shift; the runner-up rather than the record, so one freak event does not blind
   the detector for weeks. This plays the role of Numenta's "anomaly likelihood": it makes one
   threshold mean the same on every series.
4. **New shapes count more.** :class:`~stanch.core.detectors.novelty.SequenceNovelty` says how
   new the current coarse level is after the last two; the size score ``a = r / (1 + r)`` is
   sharpened to ``a ** (1 - boost * novelty)``: a familiar move keeps its size, a new one rises.
5. **One alarm per event.** The score is stretched so that 0.5 is the detector's alarm level;
   after an alarm the next ``mute`` points score 0: the first point of an incident is the
   news, its echo in the longer scales is the same news.
6. **A series' own routine peaks count less.** Each series keeps the exponentially weighted
   share of its past scores at or above twelve levels (0.45, 0.50, ... 1.0; half-life
   ``tail_half_life``); the highest level that 5 % of its scores reach is its running 95th
   percentile. ``tail_cost`` x (that percentile - 0.45) is taken off each score, so a series
   whose ordinary peaks already score 0.8 needs a larger surprise to alarm, and a calm series
   (percentile under 0.45) is untouched. This is the across-series calibration the records
   leave: on NAB it removes 15 of 100 false alarms and no detection.

**Eager at first.** Until two record blocks exist (about ``warmup + 2 * record_lag`` points),
the only yardstick is ``margin``: a new series alarms on a 3.7-sigma point, where a settled
one needs a surprise beyond its own runner-up record. On NAB this eagerness pays (short files
put anomalies right after the probation period); the engine's alerting gates alarms on its
own z thresholds as well, so an eager alarm on a young series does not page by itself.

:meth:`explain` says which expectation and time scale drove the verdict.

>>> import random
>>> rng = random.Random(11)
>>> d = EnsembleDetector()
>>> calm = [d.update(60.0 * i, 50 + rng.gauss(0, 2)).value for i in range(2000)]
>>> sum(v >= 0.5 for v in calm[300:])  # see "Eager at first" above
0
>>> s = d.update(60.0 * 2000, 90.0)
>>> s.value >= 0.5, d.explain(s).startswith("90 vs 50")
(True, True)
"""

from __future__ import annotations

import math
from array import array
from typing import ClassVar

from stanch.core.detectors._ew import MAD_TO_SIGMA, TINY, EwRobust
from stanch.core.detectors.base import NO_DATA, Score
from stanch.core.detectors.novelty import SequenceNovelty
from stanch.core.detectors.robust import z_text
from stanch.core.detectors.seasonal import DAY, SeasonalBaseline

SCALES: tuple[int, ...] = (1, 6, 24)
# The sharpened size at which the detector alarms, before the stretch that maps it to 0.5.
ALARM_SIZE = 0.55
CALIBRATION = math.log(0.5) / math.log(ALARM_SIZE)
# Score levels whose running exceedance shares give a series' own high quantile (step 6).
TAIL_LEVELS: tuple[float, ...] = tuple(0.45 + 0.05 * j for j in range(12))
TAIL_SHARE = 0.05  # the quantile read: the highest level that 5 % of past scores reach
TAIL_MIN = 50  # scores learned before the tail is trusted


class EnsembleDetector:
    """Best-of-two baselines, multi-scale z, per-scale novelty ratio, shape novelty, muting."""

    STATE: ClassVar[tuple[str, ...]] = (
        "_level",
        "_seasonal",
        "_scales",
        "_residuals",
        "_sums",
        "_count",
        "_top",
        "_runner_up",
        "_pending",
        "_block",
        "_novelty",
        "_muted",
        "_spread",
        "_tail",
        "_tail_n",
        "_why",
    )
    __slots__ = (
        "_block",
        "_count",
        "_level",
        "_muted",
        "_novelty",
        "_pending",
        "_record_decay",
        "_ring",
        "_ring_at",
        "_runner_up",
        "_scales",
        "_seasonal",
        "_spread",
        "_sums",
        "_tail",
        "_tail_decay",
        "_tail_n",
        "_top",
        "_why",
        "boost",
        "margin",
        "mute",
        "name",
        "quiet",
        "record_lag",
        "scales",
        "tail_cost",
        "warmup",
    )

    def __init__(
        self,
        *,
        half_life: float = 1000.0,
        warmup: int = 150,
        quiet: int = 200,
        scales: tuple[int, ...] = SCALES,
        record_half_life: float = 4000.0,
        margin: float = 3.0,
        record_lag: int = 72,
        boost: float = 0.3,
        levels: int = 8,
        order: int = 2,
        mute: int = 29,
        period: float = DAY,
        bins: int = 144,
        seasonal_rate: float = 0.5,
        weekly: bool = True,
        weekly_ratio: bool = False,
        clip: float = 3.0,
        tail_cost: float = 0.3,
        tail_half_life: float = 1000.0,
        name: str = "ensemble",
    ) -> None:
        if not scales or min(scales) < 1 or quiet < warmup or mute < 0 or margin <= 0:
            raise ValueError("scales >= 1, quiet >= warmup, mute >= 0, margin > 0")
        if not 0.0 <= boost < 1.0:
            raise ValueError("0 <= boost < 1")
        alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.warmup = warmup
        self.quiet = quiet
        self.scales = tuple(scales)
        self.margin = margin
        self.record_lag = max(1, record_lag)
        self.boost = boost
        self.mute = mute
        self.tail_cost = tail_cost
        self.name = name
        # The series' own tail of scores: per level in TAIL_LEVELS, the EW share of past scores
        # at or above it (learned after the quiet period, muted points included).
        self._tail_decay = 1.0 - 0.5 ** (1.0 / tail_half_life)
        self._tail = array("f", bytes(4 * len(TAIL_LEVELS)))  # float32: shares need no more
        self._tail_n = 0
        self._record_decay = 0.5 ** (1.0 / record_half_life)
        self._level = EwRobust(alpha, warmup, clip)
        self._seasonal = SeasonalBaseline(
            period=period,
            bins=bins,
            rate=seasonal_rate,
            weekly=weekly,
            ratio=weekly_ratio,
            half_life=half_life,
            warmup=warmup,
            clip=clip,
        )
        n = len(self.scales)
        self._scales = _MultiEw(n, alpha, warmup, clip)
        # The last max(scales) residuals, packed; _ring_at is the oldest (the next to go).
        self._ring = array("d", [0.0]) * max(self.scales)
        self._ring_at = 0
        self._sums = [0.0] * n
        self._count = 0
        # Per scale: the largest and second-largest block maxima of |z| (decaying), and the
        # current block's maximum, merged every ``record_lag`` points.
        self._top = [0.0] * n
        self._runner_up = [0.0] * n
        self._pending = [0.0] * n
        self._block = 0
        self._novelty = SequenceNovelty(levels, order)
        self._muted = 0
        self._spread = 0.0
        # Why the last score: (seasonal expectation used, index of the driving scale, its z).
        self._why: list[float] = [0.0, 0.0, 0.0]

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if not (math.isfinite(t) and math.isfinite(value) and 0.0 < weight < math.inf):
            return NO_DATA  # NaN, +-inf (a value or a timestamp): no data, nothing learned
        self._count += 1
        level = self._level
        z_level = level.z(value) if level.count else 0.0
        expected = level.level if level.count else value
        spread = level.spread()
        seasonal = False
        s_expected, s_z = self._seasonal.residual_z(t, value)
        if s_z == s_z and self._seasonal.ready and self._seasonal.spread() < spread:
            seasonal = True
            expected = s_expected
            spread = self._seasonal.spread()
        residual = value - expected
        self._spread = spread
        level.learn(value, z_level)
        self._seasonal.learn(t, value)
        novelty = self._novelty.update(value)

        # Running sums over the last k residuals, one per scale, from one shared ring buffer;
        # each scale's z is judged against that scale's own runner-up record.
        ring = self._ring
        n = len(ring)
        at = self._ring_at
        ratio = -1.0
        best = 0.0
        best_i = 0
        margin = self.margin
        abs_z = [0.0] * len(self.scales)
        for i, k in enumerate(self.scales):
            self._sums[i] += residual - ring[at - k]  # k points back; negative wraps around
            mean = self._sums[i] / k
            z = self._scales.z(i, mean)
            self._scales.learn(i, mean, z)
            abs_z[i] = abs(z)
            r = abs_z[i] / (self._runner_up[i] + margin)
            if r > ratio:
                ratio, best, best_i = r, z, i
        ring[at] = residual
        self._ring_at = at + 1 if at + 1 < n else 0

        if self._count <= self.warmup:
            return Score(0.0, value, expected, 0.0, warming=True)
        self._learn_records(abs_z)
        if self._count <= self.quiet:
            return Score(0.0, value, expected, best, warming=True)
        self._why = [1.0 if seasonal else 0.0, float(best_i), best]
        size = ratio / (1.0 + ratio)
        score = size ** ((1.0 - self.boost * novelty) * CALIBRATION) if size > 0.0 else 0.0
        score = max(0.0, score - self._tail_penalty(score))
        if self._muted:
            self._muted -= 1
            return Score(0.0, value, expected, best)
        if score >= 0.5:
            self._muted = self.mute
        return Score(score, value, expected, best)

    def _tail_penalty(self, score: float) -> float:
        """How much a series whose own routine scores run high must clear beyond 0.5; then
        learn ``score`` (before the penalty) into the tail shares.

        The penalty is ``tail_cost`` x (the series' running 95th percentile of scores, read
        off the levels, minus the lowest level): a series where one point in twenty already
        scores 0.8 has its routine peaks lowered, a calm one is untouched.
        """
        tail = self._tail
        penalty = 0.0
        if self._tail_n >= TAIL_MIN:
            for j in range(len(tail) - 1, -1, -1):
                if tail[j] >= TAIL_SHARE:
                    penalty = self.tail_cost * (TAIL_LEVELS[j] - TAIL_LEVELS[0])
                    break
        self._tail_n += 1
        rate = max(self._tail_decay, 1.0 / self._tail_n)
        for j, level in enumerate(TAIL_LEVELS):
            tail[j] += rate * ((1.0 if score >= level else 0.0) - tail[j])
        return max(0.0, penalty)

    @property
    def _residuals(self) -> list[float]:
        """The ring's residuals, oldest first: the snapshot's form (that of the deque the
        ring replaced, so saved state loads either way)."""
        at = self._ring_at
        return list(self._ring[at:]) + list(self._ring[:at])

    @_residuals.setter
    def _residuals(self, saved: list[float]) -> None:
        n = len(self._ring)
        kept = [float(x) for x in saved[-n:]]
        self._ring = array("d", [0.0] * (n - len(kept)) + kept)
        self._ring_at = 0

    def _learn_records(self, abs_z: list[float]) -> None:
        """Decay the records; every ``record_lag`` points merge the block's maxima into them.

        The lag means an event that grows (a shift seen first at scale 6, then more clearly at
        24) is not measured against itself.
        """
        decay = self._record_decay
        top, runner_up, pending = self._top, self._runner_up, self._pending
        for i, z in enumerate(abs_z):
            top[i] *= decay
            runner_up[i] *= decay
            if z > pending[i]:
                pending[i] = z
        self._block += 1
        if self._block >= self.record_lag:
            for i, m in enumerate(pending):
                if m > top[i]:
                    runner_up[i], top[i] = top[i], m
                elif m > runner_up[i]:
                    runner_up[i] = m
                pending[i] = 0.0
            self._block = 0

    @property
    def weekly_ratio(self) -> bool:
        """Whether the daily profile's weekdays are learned as ratios (for a count-like,
        non-negative series such as a request rate: see :class:`SeasonalBaseline`)."""
        return self._seasonal.ratio

    @weekly_ratio.setter
    def weekly_ratio(self, on: bool) -> None:
        self._seasonal.ratio = on

    @property
    def spread(self) -> float:
        """The point-level sigma of the baseline used for the last point.

        ``(observed - expected) / spread`` is that point's own z-score, whatever time scale
        drove the score.
        """
        return self._spread

    def usual_at(self, t: float) -> tuple[float, float]:
        """``(expected, spread)`` of the daily profile alone at ``t``; NaN before it is ready
        or for a time of day it has not seen yet.

        The ensemble judges each point against whichever baseline has the smaller spread
        overall, and a flat level whose spread collapsed over a night of zeros can win the
        morning ramp it has never seen. A caller that must not page on what happens every day
        at this hour asks the profile directly."""
        seasonal = self._seasonal
        if not (seasonal.ready and math.isfinite(t)):
            return math.nan, math.nan
        expected = seasonal.expected(t)
        return (expected, seasonal.spread()) if expected == expected else (math.nan, math.nan)

    def explain(self, score: Score) -> str:
        """One line a responder can read: seen vs expected, by which baseline, at which scale."""
        if not score.has_data:
            return "no data"
        seasonal, scale, z = self._why
        basis = "usual at this time of day" if seasonal else "baseline"
        k = self.scales[int(scale)]
        over = "this point" if k == 1 else f"mean of last {k} points"
        return (
            f"{score.observed:.4g} vs {score.expected:.4g} {basis}, {z_text(z)} ({over}); "
            f"{'new' if score.value >= 0.5 else 'no new'} record surprise"
        )


class _MultiEw:
    """One :class:`EwRobust` per time scale, kept as flat lists so snapshots stay plain JSON."""

    STATE: ClassVar[tuple[str, ...]] = ("level", "dev", "count")
    __slots__ = ("alpha", "clip", "count", "dev", "level", "warmup")

    def __init__(self, n: int, alpha: float, warmup: int, clip: float) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.clip = clip
        self.level = [0.0] * n
        self.dev = [0.0] * n
        self.count = [0] * n

    def z(self, i: int, x: float) -> float:
        if not self.count[i]:
            return 0.0
        return (x - self.level[i]) / _spread(self.dev[i], self.level[i])

    def learn(self, i: int, x: float, z: float) -> None:
        count = self.count[i] = self.count[i] + 1
        if count == 1:
            self.level[i] = x
            return
        level = self.level[i]
        alpha = self.alpha
        if count <= self.warmup:
            alpha = max(alpha, 1.0 / count)
            target = x
        else:
            target = level + max(-self.clip, min(self.clip, z)) * _spread(self.dev[i], level)
        self.dev[i] += alpha * (abs(target - level) - self.dev[i])
        self.level[i] = level + alpha * (target - level)


def _spread(dev: float, level: float) -> float:
    return max(dev * MAD_TO_SIGMA, 1e-9 * abs(level), TINY)
