"""Holding a level alert (traffic spike or drop, latency spike) until the level comes back.

The ensemble learns: a route whose traffic fell to 30% for fifteen minutes is, a few minutes
in, a route at its new level, and its score falls under the gate's ``off`` although nothing
has recovered. Measured before this hold (1 s points, seeds 0-1): a sustained drop to 30% of
5 req/s resolved after 4-5 minutes and fired again; a surge to 3x of 50 req/s resolved after
11 minutes while still at 3x; p95 at 2x resolved after 8-10 minutes. An alert that resolves
while its cause goes on tells the responder the wrong thing.

So while a level alert fires, the monitor asks this hold whether the level is still at least
half as far from what was expected when it fired as an alert needs to be (``min_change``, the
series' ``min_rate_change`` or ``latency_min_change``: with 50%, a drop holds while the level
is under 75% of the old one, a spike while over 125%). While it is, the point scores
``HOLD_SCORE``: it neither fires nor counts towards clearing.

The level is the mean of the last points, not the last point: at 0.5 req/s a 1 s point is 0
or 1 request, and ten points in a row past any mark are rare even once traffic is back. The
mean spans at least ``min_points`` points and, for request rates, enough of them to expect ten
requests at the mark, so Poisson noise alone neither holds nor lifts it.

The hold is not forever: ``max_s`` (1 h) after the alert began the level is taken as the new
normal and the alert clears as the detector sees fit.

Pure: no I/O, no clock; time is the point's.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

HOLD_MAX_S: Final = 3600.0
_COUNTS: Final = 10.0  # requests expected at the mark over the averaging window
_MAX_POINTS: Final = 3600


class LevelHold:
    """What a level alert fired against (``expected``), which way (``direction`` +1 for a
    rise, -1 for a drop), since when, and the recent points it is judged by."""

    __slots__ = ("_recent", "_total", "direction", "expected", "mark", "max_s", "since")

    def __init__(
        self,
        expected: float,
        direction: int,
        since: float,
        *,
        min_change: float,
        interval: float | None = None,
        min_points: int = 10,
        max_s: float = HOLD_MAX_S,
    ) -> None:
        """``interval`` (seconds per point) marks a request rate: its window then spans
        enough points to expect ``_COUNTS`` requests at the mark."""
        self.expected = expected
        self.direction = direction
        self.since = since
        self.max_s = max_s
        usable = expected > 0 and math.isfinite(expected) and direction in (-1, 1)
        self.mark = expected * (1.0 + direction * min_change / 2.0) if usable else math.nan
        points = max(min_points, 1)
        if interval is not None and interval > 0 and self.mark > 0:
            points = max(points, math.ceil(_COUNTS / (self.mark * interval)))
        self._recent: deque[float] = deque(maxlen=min(points, _MAX_POINTS))
        self._total = 0.0  # sum of _recent, kept as points come and go (up to 3600 of them)

    def holds(self, t: float, observed: float) -> bool:
        """Is the level (``observed`` at ``t`` and the points before it) still past the mark,
        within ``max_s`` of the alert's start?"""
        if not (self.mark > 0) or not math.isfinite(observed) or t - self.since > self.max_s:
            return False
        recent = self._recent
        if len(recent) == recent.maxlen:
            self._total -= recent[0]
        recent.append(observed)
        self._total += observed
        level = self._total / len(recent)
        return (level - self.mark) * self.direction > 0
