"""The detector's expectation and "quiet band" for each point a chart draws.

After each point, a :class:`~stanch.core.detection.SeriesMonitor` holds ``last_scores``: per
alert kind, what it observed, what it expected, and the deviation in its own unit of surprise.
From that, and the series' :class:`~stanch.core.detection_config.DetectionConfig`, this module
derives the range of values the detector would *not* have called anomalous at that moment:

* request rate: a spike needs ``z >= spike_threshold`` *and* a relative change of at least
  ``min_rate_change`` *and* ``min_spike_rps`` extra requests; a drop needs the mirror image.
  The band is the region where either condition fails.
* error ratio: the burst test never pages below ``error_min_ratio``; the band is
  ``[0, max(error_min_ratio, expected)]``.
* p95 latency: judged in log space and only upwards, with ``latency_min_change`` on top;
  the band is ``[0, upper]``.

The spread is the monitor's point-level sigma (``SeriesMonitor.spreads``) when it reports one:
with the ensemble detector (the default) the deviation is that of its strongest time scale (a
mean over up to 24 points), so it says little about one point's spread. Otherwise (the robust
detector, whose deviation is a point z) the spread is recovered as
``|observed - expected| / |deviation|``; when the point sits on its expectation (deviation 0)
the last known spread is kept. The band is the one-point picture: a sustained shift inside it
can still fire, through the ensemble's longer time scales. Warm-up and empty
points have no band. A band is a picture of the detector, not a second detector: hysteresis
(several points in a row) still decides when an alert fires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from stanch.core.alerts import AlertKind
from stanch.core.detection import SeriesMonitor
from stanch.core.detectors.base import Score

_NAN = math.nan


@dataclass(frozen=True, slots=True)
class Bands:
    """Expected value and quiet band of each signal at one point (NaN: unknown)."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "rate_exp",
        "rate_lo",
        "rate_hi",
        "err_exp",
        "err_hi",
        "p95_exp",
        "p95_hi",
    )

    rate_exp: float = _NAN
    rate_lo: float = _NAN
    rate_hi: float = _NAN
    err_exp: float = _NAN
    err_hi: float = _NAN
    p95_exp: float = _NAN
    p95_hi: float = _NAN

    def values(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in self.COLUMNS)


NO_BANDS = Bands()


class BandState:
    """The last spreads seen on one series, for points that sit exactly on expectation."""

    __slots__ = ("latency_spread", "rate_spread")

    def __init__(self) -> None:
        self.rate_spread = _NAN
        self.latency_spread = _NAN  # in log1p space

    def update(self, monitor: SeriesMonitor) -> Bands:
        scores = monitor.last_scores
        config = monitor.config
        spreads = monitor.spreads
        rate_exp, rate_lo, rate_hi = self._rate(
            scores.get(AlertKind.TRAFFIC_SPIKE), config, spreads.get("rate", _NAN)
        )
        err_exp, err_hi = _errors(scores.get(AlertKind.ERROR_BURST), config)
        p95_exp, p95_hi = self._latency(
            scores.get(AlertKind.LATENCY_SPIKE), config, spreads.get("latency_p95", _NAN)
        )
        return Bands(rate_exp, rate_lo, rate_hi, err_exp, err_hi, p95_exp, p95_hi)

    def _rate(
        self, score: Score | None, config: object, known: float = _NAN
    ) -> tuple[float, float, float]:
        if not _usable(score):
            return _NAN, _NAN, _NAN
        assert score is not None
        expected = score.expected
        self.rate_spread = (
            known
            if math.isfinite(known)
            else _spread(score.observed - score.expected, score, self.rate_spread)
        )
        spread = self.rate_spread if self.rate_spread == self.rate_spread else 0.0
        up = _cfg(config, "spike_threshold", 6.0)
        down = _cfg(config, "drop_threshold", 4.0)
        relative = _cfg(config, "min_rate_change", 0.5)
        extra = _cfg(config, "min_spike_rps", 2.0)
        hi = max(expected + up * spread, expected * (1 + relative), expected + extra)
        lo = max(0.0, min(expected - down * spread, expected * (1 - relative)))
        return expected, lo, hi

    def _latency(
        self, score: Score | None, config: object, known: float = _NAN
    ) -> tuple[float, float]:
        if not _usable(score):
            return _NAN, _NAN
        assert score is not None
        expected = score.expected
        if expected < 0:
            return _NAN, _NAN
        log_change = math.log1p(max(score.observed, 0.0)) - math.log1p(expected)
        self.latency_spread = (
            known if math.isfinite(known) else _spread(log_change, score, self.latency_spread)
        )
        spread = self.latency_spread if self.latency_spread == self.latency_spread else 0.0
        threshold = _cfg(config, "latency_threshold", 6.0)
        relative = _cfg(config, "latency_min_change", 0.5)
        hi = max(math.expm1(math.log1p(expected) + threshold * spread), expected * (1 + relative))
        return expected, hi


def _errors(score: Score | None, config: object) -> tuple[float, float]:
    if not _usable(score):
        return _NAN, _NAN
    assert score is not None
    return score.expected, max(_cfg(config, "error_min_ratio", 0.03), score.expected)


def _usable(score: Score | None) -> bool:
    return (
        score is not None
        and score.has_data
        and not score.warming
        and math.isfinite(score.expected)
        and math.isfinite(score.observed)
    )


def _spread(change: float, score: Score, last: float) -> float:
    if abs(score.deviation) < 1e-6 or not math.isfinite(score.deviation):
        return last
    return abs(change) / abs(score.deviation)


def _cfg(config: object, name: str, default: float) -> float:
    value = getattr(config, name, default)
    return float(value) if isinstance(value, int | float) else default
