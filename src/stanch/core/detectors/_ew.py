"""An exponentially weighted, outlier-resistant level and spread: the building block of the suite.

Why not a window median/MAD: a window of the last few hundred points per series costs kilobytes
and a sort per point; the EW form keeps three numbers and matches a window's robustness closely
enough because each update is Huber-clipped to ``clip`` spreads, so an anomaly moves the level
only slowly and a single outlier cannot inflate the spread.
"""

from __future__ import annotations

from typing import ClassVar

MAD_TO_SIGMA = 1.2533  # mean absolute deviation of a normal variable is sigma * sqrt(2/pi)
TINY = 1e-12


class EwRobust:
    """Level and EW mean absolute deviation of one signal, with a fast warm-up."""

    STATE: ClassVar[tuple[str, ...]] = ("level", "dev", "count")
    __slots__ = ("alpha", "clip", "count", "dev", "level", "warmup")

    def __init__(self, alpha: float, warmup: int, clip: float) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.clip = clip
        self.level = 0.0
        self.dev = 0.0
        self.count = 0

    def spread(self) -> float:
        """The learned scale as a sigma, floored so a flat signal still yields finite z."""
        return max(self.dev * MAD_TO_SIGMA, 1e-9 * abs(self.level), TINY)

    def z(self, x: float) -> float:
        return (x - self.level) / self.spread()

    def learn(self, x: float, z: float) -> None:
        """Learn ``x`` whose z-score (from :meth:`z`, before learning) was ``z``."""
        self.count += 1
        if self.count == 1:
            self.level = x
            return
        alpha = self.alpha
        if self.count <= self.warmup:
            # Too little history to trust the spread: learn the raw value, quickly.
            alpha = max(alpha, 1.0 / self.count)
            target = x
        else:
            target = self.level + max(-self.clip, min(self.clip, z)) * self.spread()
        self.dev += alpha * (abs(target - self.level) - self.dev)
        self.level += alpha * (target - self.level)
