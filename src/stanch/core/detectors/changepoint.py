"""Change points: a two-sided CUSUM on robustly standardized values.

Why CUSUM rather than Bayesian online change-point detection: BOCPD keeps a run-length
distribution that grows with the series (or a truncated one of hundreds of floats) and costs
O(run length) per point; Page's CUSUM keeps two sums and is the optimal test for a shift of known
size, which is what a deploy or a saturated dependency does to latency and error ratios. A small
sustained shift (0.5 sigma for 40 points) that no single point reveals still adds up here.

Each point is standardized against a robust baseline learned from the past; the sums accumulate
``z - drift`` (and ``-z - drift``), and a sum over ``threshold`` is a change. After a change the
baseline restarts at the new level and the sums at zero, so one shift yields one alarm.

>>> import random
>>> rng = random.Random(3)
>>> d = CusumDetector(warmup=50, half_life=500)
>>> before = [d.update(float(t), rng.gauss(10, 1)).value for t in range(300)]
>>> max(before[60:]) < 0.5
True
>>> after = [d.update(float(t), rng.gauss(11.5, 1)).value for t in range(300, 340)]
>>> max(after) >= 0.5
True
"""

from __future__ import annotations

import math
from typing import ClassVar

from stanch.core.detectors._ew import EwRobust
from stanch.core.detectors.base import NO_DATA, Score, squash


class CusumDetector:
    """Two-sided CUSUM; ``deviation`` is the signed cumulative sum in sigma units."""

    STATE: ClassVar[tuple[str, ...]] = ("_base", "_up", "_down")
    __slots__ = ("_base", "_down", "_up", "drift", "name", "threshold")

    def __init__(
        self,
        *,
        drift: float = 0.5,
        threshold: float = 8.0,
        half_life: float = 1000.0,
        warmup: int = 150,
        clip: float = 3.0,
        name: str = "cusum",
    ) -> None:
        if drift < 0 or threshold <= 0 or half_life <= 0 or warmup < 1:
            raise ValueError("drift >= 0; threshold, half_life and warmup must be positive")
        self.drift = drift
        self.threshold = threshold
        self.name = name
        self._base = EwRobust(1.0 - 0.5 ** (1.0 / half_life), warmup, clip)
        self._up = 0.0
        self._down = 0.0

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if not (math.isfinite(value) and 0.0 < weight < math.inf):  # NaN, +-inf: no data
            return NO_DATA
        base = self._base
        expected = base.level
        z = base.z(value) if base.count else 0.0
        warming = base.count <= base.warmup
        base.learn(value, z)
        if warming:
            return Score(0.0, value, expected if base.count > 1 else value, 0.0, warming=True)
        # Each point's contribution is clipped like the baseline's learning, so one wild
        # outlier is a spike (the robust baseline's business), not a change point.
        bounded = max(-base.clip * 2, min(base.clip * 2, z))
        self._up = max(0.0, self._up + bounded - self.drift)
        self._down = max(0.0, self._down - bounded - self.drift)
        signed = self._up if self._up >= self._down else -self._down
        score = Score(squash(abs(signed), self.threshold), value, expected, signed)
        if abs(signed) >= self.threshold:
            # A change was found: the old regime is history. Restart the baseline at the new
            # level and the sums at zero, so one lasting shift is one alarm.
            self._up = self._down = 0.0
            base.level = value
        return score

    def explain(self, score: Score) -> str:
        """One line a responder can read: seen vs the baseline, and how much shift has piled up.

        The cumulative sum is what makes a small shift news, so it is named with the threshold
        it is measured against.
        """
        if not score.has_data:
            return "no data: nothing was measured at this point"
        seen = f"{score.observed:.4g} vs baseline {score.expected:.4g}"
        if score.warming:
            return f"{seen}; still learning the baseline (warm-up), no verdict yet"
        way = "up" if score.deviation >= 0 else "down"
        verdict = "a change" if score.value >= 0.5 else "not yet a change"
        return (
            f"sustained shift {way}: {seen}, cumulative {abs(score.deviation):.1f} sigma "
            f"against a change threshold of {self.threshold:g} ({verdict})"
        )
