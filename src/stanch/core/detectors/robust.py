"""Robust baseline: exponentially weighted level and spread, resistant to the anomalies it flags.

Why not a plain EWMA z-score: an incident would teach the baseline that the incident is normal
within minutes, and a single outlier would inflate the spread for a long time. Here each update
is clipped to ``clip`` spreads from the level (Huber-style), so an anomaly moves the baseline
only slowly, and the spread is an EW mean absolute deviation (robust, scaled to a sigma).

Count-like signals (request rate) set ``count_noise``: the spread is never below the Poisson
noise of a count observed over ``weight`` seconds, so a quiet route at night (2 req/s falling
to 0) is not a "drop" while a busy route (400 req/s falling to 0) is.

>>> d = RobustBaseline(half_life=20, warmup=10, threshold=6.0)
>>> scores = [d.update(float(t), 10.0 + (t % 3)) for t in range(50)]
>>> scores[-1].value < 0.5
True
>>> d.update(50.0, 60.0).value > 0.5
True
"""

from __future__ import annotations

import math
from typing import ClassVar

from stanch.core.detectors.base import NO_DATA, Direction, Score, squash

_MAD_TO_SIGMA = 1.2533  # mean absolute deviation of a normal variable is sigma * sqrt(2/pi)
#: Beyond this many spreads a z-score says only "far beyond anything seen": on a series that
#: was flat the spread is a floor near zero, and a printed z of 2e14 reads as a bug.
Z_PRINT_MAX = 1000.0


def z_text(z: float) -> str:
    """``z=+2.3`` for a responder; ``z>+1000`` (or ``z<-1000``) past :data:`Z_PRINT_MAX`."""
    if z != z:
        return "z=n/a"
    if abs(z) > Z_PRINT_MAX:
        return f"z{'>+' if z > 0 else '<-'}{Z_PRINT_MAX:g}"
    return f"z={z:+.1f}"


class RobustBaseline:
    """Streaming level + spread with warm-up, clipping and optional log transform."""

    STATE: ClassVar[tuple[str, ...]] = ("_level", "_dev", "_count")
    __slots__ = (
        "_count",
        "_dev",
        "_level",
        "alpha",
        "clip",
        "count_noise",
        "direction",
        "log",
        "min_relative_change",
        "min_spread",
        "name",
        "threshold",
        "warmup",
    )

    def __init__(
        self,
        *,
        half_life: float = 300.0,
        warmup: int = 60,
        threshold: float = 6.0,
        direction: Direction = Direction.BOTH,
        clip: float = 3.0,
        log: bool = False,
        count_noise: bool = False,
        min_spread: float = 1e-9,
        min_relative_change: float = 0.0,
        name: str = "robust",
    ) -> None:
        if half_life <= 0 or warmup < 1 or threshold <= 0 or clip <= 0:
            raise ValueError("half_life, warmup, threshold and clip must be positive")
        self.alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.warmup = warmup
        self.threshold = threshold
        self.direction = direction
        self.clip = clip
        self.log = log
        self.count_noise = count_noise
        self.min_spread = min_spread
        self.min_relative_change = min_relative_change
        self.name = name
        self._level = 0.0
        self._dev = 0.0
        self._count = 0

    @property
    def level(self) -> float:
        """The learned expectation, in the signal's own unit."""
        return math.expm1(self._level) if self.log else self._level

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if not (math.isfinite(t) and math.isfinite(value) and 0.0 < weight < math.inf):
            return NO_DATA  # NaN, +-inf (a value or a timestamp): no data, as in the suite
        x = math.log1p(max(value, 0.0)) if self.log else value
        if self._count == 0:
            self._level = x
            self._count = 1
            return Score(0.0, value, value, 0.0, warming=True)
        spread = max(self._dev * _MAD_TO_SIGMA, self.min_spread)
        if self.count_noise:
            # The learned spread already holds the Poisson noise of a steady series; the
            # Poisson floor only matters where the spread has not seen it (quiet series).
            spread = max(spread, math.sqrt(max(self._level, 1.0) / weight))
        deviation = (x - self._level) / spread
        expected = self.level
        warming = self._count < self.warmup
        self._learn(x, deviation, spread)
        if warming:
            return Score(0.0, value, expected, deviation, warming=True)
        surprise = self._surprise(deviation, value, expected)
        return Score(squash(surprise, self.threshold), value, expected, deviation)

    def _surprise(self, deviation: float, value: float, expected: float) -> float:
        if self.direction is Direction.UP:
            surprise = deviation
        elif self.direction is Direction.DOWN:
            surprise = -deviation
        else:
            surprise = abs(deviation)
        if surprise <= 0.0:
            return 0.0
        if self.min_relative_change > 0.0:
            base = max(abs(expected), 1e-9)
            if abs(value - expected) / base < self.min_relative_change:
                return 0.0
        return surprise

    def _learn(self, x: float, deviation: float, spread: float) -> None:
        self._count += 1
        alpha = self.alpha
        if self._count <= self.warmup:
            # Too little history to trust the spread: learn the raw value, quickly.
            target = x
            alpha = max(alpha, 1.0 / self._count)
        else:
            bounded = max(-self.clip, min(self.clip, deviation))
            target = self._level + bounded * spread
        self._dev += alpha * (abs(target - self._level) - self._dev)
        self._level += alpha * (target - self._level)

    def explain(self, score: Score) -> str:
        """One line a responder can read: seen vs baseline, how many spreads apart, and why that
        did or did not cross the alarm level (direction and relative-change floor included,
        because those are what silence a large z)."""
        if not score.has_data:
            return "no data: nothing was measured at this point"
        seen = f"{score.observed:.4g} vs baseline {score.expected:.4g}"
        if score.warming:
            return f"{seen}; still learning the baseline ({self.warmup}-point warm-up), no verdict"
        way = "above" if score.deviation >= 0 else "below"
        sigmas = abs(score.deviation)
        size = (
            f"{sigmas:.1f} sigma {way}"
            if sigmas <= Z_PRINT_MAX
            else f"more than {Z_PRINT_MAX:g} sigma {way}"
        )
        if score.value >= 0.5:
            return f"{seen}: {size}, beyond the {self.threshold:g}-sigma alarm level"
        watched = {Direction.UP: "above", Direction.DOWN: "below"}.get(self.direction, way)
        if watched != way:
            return f"{seen}: {size}, but only moves {watched} the baseline are anomalies here"
        change = abs(score.observed - score.expected) / max(abs(score.expected), 1e-9)
        if 0.0 < change < self.min_relative_change:
            return (
                f"{seen}: {size}, but a {change:.0%} change is under the "
                f"{self.min_relative_change:.0%} that matters"
            )
        return f"{seen}: {size}, within the {self.threshold:g}-sigma alarm level"
