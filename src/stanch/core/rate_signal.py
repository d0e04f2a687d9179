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
* **Coming back from a surge is no drop.** The ensemble's expectation follows a surge up (a
  quarter of an hour at 3x lifts it to about 2.4x), and traffic returning to its usual level
  then read as a 60% drop: measured, every 15-minute 3x surge of a 5 or 50 req/s route ended
  in a traffic-drop page. While the daily profile does not know the hour (when it does, its
  verdict stands, above), deficits are measured against the lower of the expectation and the
  series' *calm level*, a mean of its rate over about the last hour (:class:`CalmLevel`),
  which a short surge barely moves. A real outage is as far under one as under the other.

With ``RobustBaseline`` (``detector: robust``) none of this applies: its z already has the
Poisson floor, and its score is passed through.

Pure: no I/O, no clock; the state is snapshotted by the series monitor under its historical
keys ("rate", "run", "usual_run") and "calm".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

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


class CalmLevel:
    """The mean request rate over about the last ``half_life_s`` (time-weighted, so it means
    the same at 1 s and 60 s points; bias-corrected, so its first points are not read as a
    slow climb from zero)."""

    STATE: ClassVar[tuple[str, ...]] = ("total", "weight")
    __slots__ = ("half_life_s", "total", "weight")

    def __init__(self, half_life_s: float = 3600.0) -> None:
        self.half_life_s = half_life_s
        self.total = 0.0
        self.weight = 0.0

    def update(self, rate: float, interval: float) -> None:
        if not (math.isfinite(rate) and interval > 0.0):
            return
        keep = 0.5 ** (interval / self.half_life_s)
        self.total = self.total * keep + rate * interval
        self.weight = self.weight * keep + interval

    @property
    def level(self) -> float:
        """The calm level in req/s, NaN before the first point."""
        return self.total / self.weight if self.weight > 0.0 else math.nan


class RateSignal:
    """The request-rate detector of one series and the evidence it needs around it."""

    __slots__ = ("calm", "detector", "last_raw", "run", "spread", "usual_run")

    def __init__(self, detector: EnsembleDetector | RobustBaseline) -> None:
        if isinstance(detector, EnsembleDetector):
            # Requests are counts: a weekend at a quarter of the weekdays' traffic is a ratio,
            # and the day's shape shrinks with it (generic series keep additive weekdays).
            detector.weekly_ratio = True
        self.detector = detector
        self.run = DeficitRun()  # requests missing over the current run under expectation
        self.usual_run = DeficitRun(hold=False)  # the same, under the daily profile
        self.calm = CalmLevel()  # the rate over about the last hour: what a surge barely moves
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
        usual, usual_spread = detector.usual_at(t)
        calm = self.calm.level
        self.calm.update(rate, interval)
        expected = raw.expected
        if rate < expected and usual != usual and calm == calm:
            expected = min(expected, calm)  # a deficit under a surge-lifted expectation
        poisson = math.sqrt(max(expected, 1.0) / interval)
        spread = point_spread(detector)
        limit = max((rate - expected) * math.copysign(1.0, raw.deviation), 0.0) / poisson
        deviation = math.copysign(min(abs(raw.deviation), limit), raw.deviation)
        strength = raw.deviation if expected == raw.expected else deviation
        judged = expected  # the expectation the verdict is measured against, reported with it
        if usual == usual:
            floor = math.sqrt(max(usual, 1.0) / interval)
            usual_z = (rate - usual) / max(usual_spread, floor)
            if abs(usual_z) < abs(deviation):
                deviation = strength = usual_z
                judged = usual
        dispersion = (spread / poisson) ** 2 if spread == spread else 1.0
        run_z = -self.run.push(rate, expected, interval, dispersion)
        if usual == usual:
            usual_dispersion = usual_spread**2 * interval / max(usual, 1.0)
            run_z = -self.usual_run.push(rate, usual, interval, usual_dispersion)
        else:
            self.usual_run.reset()
        if run_z < min(deviation, 0.0):
            deviation = strength = run_z
            judged = usual if usual == usual else expected
        self.spread = max(spread, poisson)
        # The series monitor's size checks (a drop needs half the expected traffic gone) and
        # the alert's "vs baseline" read ``expected``: it is the one the deviation came from, or
        # on a first weekend the run (against the weekday profile) and the check (against the
        # ensemble's level, already sagging) disagreed and the alert flapped for hours.
        score = Score(raw.value, raw.observed, judged, deviation, raw.warming, raw.has_data)
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
