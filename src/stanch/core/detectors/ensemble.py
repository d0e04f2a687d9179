"""The default detector: robust and seasonal baselines, multi-scale shifts, novelty, one alarm.

How it decides, and why each step is there (each was kept because it moved the NAB score; see
``bench/results/detection.md``):

1. **Two expectations, the better one wins.** A flat robust level (EW, Huber-clipped) and a
   :class:`~stanch.core.detectors.seasonal.SeasonalBaseline`. The residual of whichever has the
   smaller learned spread is used, so a daily square wave is judged against its profile (its
   edges are normal) while a noisy flat series is judged against its level.
2. **Several time scales.** The mean residual over the last 1, 6 and 24 points is scored against
   its own learned spread: a spike shows at scale 1, a modest level shift at 24, where the noise
   has averaged out. This is the change-point part of the ensemble: a windowed mean shift test
   that adapts to autocorrelation because each scale learns its own spread.
3. **Novelty, not just size.** The strongest of those z-scores is divided by a slowly decaying
   record of past z-scores of the same series (plus one). A series that spikes daily learns that
   spikes are normal for it; a calm series alarms on its first real excursion. This plays the
   role of Numenta's "anomaly likelihood": it makes one threshold mean the same on every series.
4. **One alarm per event.** After a score, lower or equal scores are muted for ``refractory``
   points: the first point of an incident is the news, the next hundred are the same news.

The score is ``r / (1 + r)`` with ``r`` the novelty ratio, so 0.5 means "one sigma beyond the
largest surprise this series has shown lately". :meth:`explain` says which expectation and time
scale drove the verdict.

>>> import random
>>> rng = random.Random(11)
>>> d = EnsembleDetector()
>>> calm = [d.update(60.0 * i, 50 + rng.gauss(0, 2)).value for i in range(2000)]
>>> sum(v >= 0.5 for v in calm[300:])
0
>>> s = d.update(60.0 * 2000, 90.0)
>>> s.value >= 0.5, d.explain(s).startswith("90 vs 50")
(True, True)
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from stanch.core.detectors._ew import MAD_TO_SIGMA, TINY, EwRobust
from stanch.core.detectors.base import NO_DATA, Score
from stanch.core.detectors.seasonal import DAY, SeasonalBaseline

SCALES: tuple[int, ...] = (1, 6, 24)


class EnsembleDetector:
    """Best-of-two baselines, multi-scale z, novelty ratio, refractory muting."""

    STATE: ClassVar[tuple[str, ...]] = (
        "_level",
        "_seasonal",
        "_scales",
        "_residuals",
        "_sums",
        "_count",
        "_record",
        "_pending",
        "_block",
        "_peak",
        "_age",
        "_why",
    )
    __slots__ = (
        "_age",
        "_block",
        "_count",
        "_level",
        "_peak",
        "_pending",
        "_record",
        "_record_decay",
        "_residuals",
        "_scales",
        "_seasonal",
        "_sums",
        "_why",
        "margin",
        "name",
        "quiet",
        "record_lag",
        "refractory",
        "scales",
        "warmup",
    )

    def __init__(
        self,
        *,
        half_life: float = 1000.0,
        warmup: int = 150,
        quiet: int = 300,
        scales: tuple[int, ...] = SCALES,
        record_half_life: float = 2000.0,
        margin: float = 1.0,
        record_lag: int = 72,
        refractory: int = 300,
        period: float = DAY,
        bins: int = 144,
        seasonal_rate: float = 0.4,
        weekly: bool = True,
        clip: float = 3.0,
        name: str = "ensemble",
    ) -> None:
        if not scales or min(scales) < 1 or quiet < warmup or refractory < 0 or margin <= 0:
            raise ValueError("scales >= 1, quiet >= warmup, refractory >= 0, margin > 0")
        alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.warmup = warmup
        self.quiet = quiet
        self.scales = tuple(scales)
        self.margin = margin
        self.record_lag = max(1, record_lag)
        self.refractory = refractory
        self.name = name
        self._record_decay = 0.5 ** (1.0 / record_half_life)
        self._level = EwRobust(alpha, warmup, clip)
        self._seasonal = SeasonalBaseline(
            period=period,
            bins=bins,
            rate=seasonal_rate,
            weekly=weekly,
            half_life=half_life,
            warmup=warmup,
            clip=clip,
        )
        self._scales = _MultiEw(len(self.scales), alpha, warmup, clip)
        self._residuals: deque[float] = deque([0.0] * max(self.scales), maxlen=max(self.scales))
        self._sums = [0.0] * len(self.scales)
        self._count = 0
        self._record = 0.0
        self._pending = 0.0
        self._block = 0
        self._peak = 0.0
        self._age = 0
        # Why the last score: (seasonal expectation used, index of the driving scale, its z).
        self._why: list[float] = [0.0, 0.0, 0.0]

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if value != value or weight <= 0.0:
            return NO_DATA
        self._count += 1
        level = self._level
        z_level = level.z(value) if level.count else 0.0
        expected = level.level if level.count else value
        residual = value - expected
        seasonal = False
        s_expected, s_z = self._seasonal.residual_z(t, value)
        if s_z == s_z and self._seasonal.ready and self._seasonal.spread() < level.spread():
            seasonal = True
            expected = s_expected
            residual = value - s_expected
        level.learn(value, z_level)
        self._seasonal.learn(t, value)

        # Running sums over the last k residuals, one per scale, from one shared ring buffer.
        ring = self._residuals
        n = len(ring)
        best = 0.0
        best_i = 0
        for i, k in enumerate(self.scales):
            self._sums[i] += residual - ring[n - k]
            mean = self._sums[i] / k
            z = self._scales.z(i, mean)
            self._scales.learn(i, mean, z)
            if abs(z) > abs(best):
                best, best_i = z, i
        ring.append(residual)

        if self._count <= self.warmup:
            return Score(0.0, value, expected, 0.0, warming=True)
        surprise = abs(best)
        ratio = surprise / (self._record + self.margin)
        # The record learns with a lag of up to ``record_lag`` points, so an event that grows
        # (a shift seen first at scale 6, then more clearly at 24) is not measured against itself.
        self._record *= self._record_decay
        self._pending = max(self._pending, surprise)
        self._block += 1
        if self._block >= self.record_lag:
            self._record = max(self._record, self._pending)
            self._pending = 0.0
            self._block = 0
        if self._count <= self.quiet:
            return Score(0.0, value, expected, best, warming=True)
        self._why = [1.0 if seasonal else 0.0, float(best_i), best]
        value_score = ratio / (1.0 + ratio)
        if value_score > self._peak:
            self._peak = value_score
            self._age = 0
        else:
            value_score = 0.0
            self._age += 1
            if self._age >= self.refractory:
                self._peak = 0.0
                self._age = 0
        return Score(value_score, value, expected, best)

    @property
    def record(self) -> float:
        """The decaying record surprise the next point's novelty ratio is measured against.

        Read it before :meth:`update`: the ratio behind a score is
        ``abs(score.deviation) / (record + margin)``, before refractory muting.
        """
        return self._record

    def explain(self, score: Score) -> str:
        """One line a responder can read: seen vs expected, by which baseline, at which scale."""
        if not score.has_data:
            return "no data"
        seasonal, scale, z = self._why
        basis = "usual at this time of day" if seasonal else "baseline"
        k = self.scales[int(scale)]
        over = "this point" if k == 1 else f"mean of last {k} points"
        return (
            f"{score.observed:.4g} vs {score.expected:.4g} {basis}, z={z:+.1f} ({over}); "
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
