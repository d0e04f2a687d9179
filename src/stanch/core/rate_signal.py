"""How surprising a series' request rate is, in a form the spike and drop gates can judge.

The rate detector alone is not the right judge of request rates, for three reasons this module
owns (the series monitor only gates the result):

* **Counts are noisy.** The ensemble learns its spreads from the series, and a mean over
  several points has a small one, so a quiet route (2 req/s) with a few seconds' lull would
  read as a drop. Each point's deviation is capped by its Poisson z,
  ``|rate - expected| / sqrt(max(expected, 1) / interval)``: the floor
  ``RobustBaseline(count_noise=True)`` has.
* **What happens every day at this hour is no anomaly**, whichever baseline the ensemble
  judged by: a flat level that slept through a night of zeros wakes up to the morning ramp.
  When the daily profile knows this time of day and finds the point less surprising, its
  verdict stands (``EnsembleDetector.usual_at``).
* **A run of low points adds up.** What one point cannot show, a run can: the z of the
  requests missing over the current run under the expectation (:mod:`stanch.core.count_run`)
  replaces the capped deviation when larger, and counts as strength (it may be overwhelming),
  so a quiet route that goes silent pages. The run is counted against the daily profile once it
  knows the hour (the night's silence is expected), else against the ensemble's expectation.
  Deficits only: after an outage the baseline has sagged, and the traffic coming back is no
  spike.

With ``RobustBaseline`` (``detector: robust``) none of this applies: its z already has the
Poisson floor, and its score is passed through.

Pure: no I/O, no clock; the state is snapshotted by the series monitor under its historical
keys ("rate", "run", "usual_run").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stanch.core.count_run import DeficitRun
from stanch.core.detectors import EnsembleDetector, RobustBaseline, Score
from stanch.core.detectors.base import NO_DATA


@dataclass(frozen=True, slots=True)
class RateReading:
    """One point's rate verdict: ``score`` carries the judged deviation (z, signed);
    ``strength`` is what may count as overwhelming (see ``NewsGate.judge``); ``news`` whether
    the detector found the point news."""

    score: Score
    strength: float
    news: bool


class RateSignal:
    """The request-rate detector of one series and the evidence it needs around it."""

    __slots__ = ("detector", "last_raw", "run", "spread", "usual_run")

    def __init__(self, detector: EnsembleDetector | RobustBaseline) -> None:
        if isinstance(detector, EnsembleDetector):
            # Requests are counts: a weekend at a quarter of the weekdays' traffic is a ratio,
            # and the day's shape shrinks with it (generic series keep additive weekdays).
            detector.weekly_ratio = True
        self.detector = detector
        self.run = DeficitRun()  # requests missing over the current run under expectation
        self.usual_run = DeficitRun(hold=False)  # the same, under the daily profile
        # The point-level sigma behind the last score (req/s), NaN when unknown: with the
        # ensemble the deviation is that of its strongest time scale, not a point's spread.
        self.spread = math.nan
        self.last_raw: Score = NO_DATA  # the detector's own last score, for explain()

    def update(self, t: float, rate: float, interval: float) -> RateReading:
        """Score one point of ``rate`` req/s over ``interval`` s ending at ``t``."""
        raw = self.detector.update(t, rate, interval)
        self.last_raw = raw
        news = raw.value >= 0.5
        if raw.warming or not raw.has_data:
            self.spread = math.nan
            return RateReading(raw, raw.deviation, news)
        detector = self.detector
        if not isinstance(detector, EnsembleDetector):
            return RateReading(raw, raw.deviation, news)
        poisson = math.sqrt(max(raw.expected, 1.0) / interval)
        spread = point_spread(detector)
        limit = abs(rate - raw.expected) / poisson
        deviation = math.copysign(min(abs(raw.deviation), limit), raw.deviation)
        strength = raw.deviation
        usual, usual_spread = detector.usual_at(t)
        if usual == usual:
            floor = math.sqrt(max(usual, 1.0) / interval)
            usual_z = (rate - usual) / max(usual_spread, floor)
            if abs(usual_z) < abs(deviation):
                deviation = strength = usual_z
        dispersion = (spread / poisson) ** 2 if spread == spread else 1.0
        run_z = -self.run.push(rate, raw.expected, interval, dispersion)
        if usual == usual:
            usual_dispersion = usual_spread**2 * interval / max(usual, 1.0)
            run_z = -self.usual_run.push(rate, usual, interval, usual_dispersion)
        else:
            self.usual_run.reset()
        if run_z < min(deviation, 0.0):
            deviation = strength = run_z
        self.spread = max(spread, poisson)
        score = Score(raw.value, raw.observed, raw.expected, deviation, raw.warming, raw.has_data)
        return RateReading(score, strength, news)

    def explain(self) -> str:
        """The ensemble's own account of the last point (which baseline, which time scale);
        empty for the robust detector, whose alert text says it all."""
        if isinstance(self.detector, EnsembleDetector):
            return self.detector.explain(self.last_raw)
        return ""


def point_spread(detector: EnsembleDetector) -> float:
    """The ensemble's point-level sigma for its last point, NaN when it has none yet."""
    return detector.spread if detector.spread > 0 else math.nan
