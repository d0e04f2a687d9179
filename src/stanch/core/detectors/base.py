"""The detector protocol and the score every detector returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Score:
    """A detector's verdict on one point.

    ``value`` is in [0, 1]; 0.5 is the detector's threshold. ``deviation`` is signed (positive:
    above expectation) in the detector's own unit of surprise (z-like). ``has_data`` is False
    when the point carried too little evidence to judge (no requests): hysteresis must neither
    fire nor clear on it.
    """

    value: float
    observed: float
    expected: float
    deviation: float
    warming: bool = False
    has_data: bool = True


NO_DATA = Score(0.0, 0.0, 0.0, 0.0, warming=False, has_data=False)
# The score of an alert held until its cause is over (a burst, a level): between the hysteresis
# gates' off (0.4) and on (0.5), so it neither fires an alert nor counts towards clearing one.
HOLD_SCORE = 0.45


def squash(surprise: float, threshold: float) -> float:
    """Map a non-negative surprise to [0, 1) so that ``surprise == threshold`` gives 0.5."""
    if surprise <= 0.0:
        return 0.0
    if math.isinf(surprise):
        return 1.0
    return surprise / (surprise + threshold)


class Detector(Protocol):
    """A streaming, causal scorer for one series and one signal."""

    name: str

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        """Score ``value`` observed at ``t`` (over ``weight`` samples), then learn from it.

        A value that is not a finite number (NaN, +-inf) or a weight that is not a finite
        positive number carries no measurement: the detector returns :data:`NO_DATA` and learns
        nothing, so one corrupt sample can neither page nor poison the baseline.
        """
        ...

    def explain(self, score: Score) -> str:
        """One line a responder reads: what was seen against what was expected, and why that is
        (or is not) an anomaly. ``score`` is this detector's latest; a score is not enough on
        its own because each detector knows its own yardstick (threshold, window, baseline).
        """
        ...
