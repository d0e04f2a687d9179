"""Detector settings of a series, and which settings a route gets.

Durations are in seconds, converted to points by ``interval_s``, so one file reads the same at
1 s and at 60 s points. The detection YAML (``stanch serve --detection``, ``stanch tune``) is
these fields by name; ``route_config`` picks a route's own settings from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from stanch.core.detectors.burn_rate import BurnTier
from stanch.core.series import SERVICE_WIDE

#: The detectors that may score request rate and p95 latency (``DetectionConfig.detector``).
DETECTORS: Final = ("ensemble", "robust")


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Detector settings; durations are in seconds and converted to points by the interval.

    ``detector`` picks what scores request rate and p95 latency: ``"ensemble"`` (the default) or
    ``"robust"`` (see :mod:`stanch.core.detection` for how each is gated).
    """

    interval_s: float = 1.0
    warmup_s: float = 120.0
    fire_after: int = 3
    clear_after: int = 10
    rate_half_life_s: float = 600.0
    spike_threshold: float = 6.0
    drop_threshold: float = 4.0
    min_rate_change: float = 0.5  # relative change a rate anomaly needs, on top of the z-test
    min_spike_rps: float = 2.0  # absolute extra load a spike needs
    error_window_s: float = 5.0
    error_threshold: float = 7.0
    error_min_ratio: float = 0.03
    error_min_errors: int = 3
    error_p_floor: float = 0.002
    slo_objective: float = 0.99
    # SLO burn-rate tiers (see BurnRateDetector): the workbook's fast page, slow page, ticket.
    burn_long_s: float = 3600.0
    burn_short_s: float = 300.0
    burn_threshold: float = 14.4
    burn_slow_long_s: float = 21600.0
    burn_slow_short_s: float = 1800.0
    burn_slow_threshold: float = 6.0
    burn_ticket_long_s: float = 259200.0
    burn_ticket_short_s: float = 21600.0
    burn_ticket_threshold: float = 1.0
    latency_threshold: float = 6.0
    latency_min_change: float = 0.5
    latency_min_samples: int = 3
    detector: str = "ensemble"

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(
                f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}"
            )
        for prefix, long_s, short_s, threshold, _ in self._burn_tier_settings():
            if not (0.0 < short_s <= long_s and math.isfinite(long_s)):
                raise ValueError(
                    f"{prefix}_short_s ({short_s:g}) must be positive and at most "
                    f"{prefix}_long_s ({long_s:g}), which must be finite"
                )
            if not (threshold > 0.0 and math.isfinite(threshold)):
                raise ValueError(f"{prefix}_threshold must be positive, got {threshold:g}")

    def points(self, seconds: float) -> int:
        return max(1, round(seconds / self.interval_s))

    def burn_tiers(self) -> tuple[BurnTier, ...]:
        """The SLO burn-rate tiers in points.

        Each tier is three flat fields rather than one list setting so that the detection YAML
        (``stanch.evaluation.detection_file``) reads and renders them, and ``stanch tune``
        tunes them, like any other number; the ``burn_long_s``/``burn_short_s``/
        ``burn_threshold`` of older configurations keep their meaning: the fast page tier."""
        return tuple(
            BurnTier(self.points(long_s), self.points(short_s), threshold, pages)
            for _, long_s, short_s, threshold, pages in self._burn_tier_settings()
        )

    def _burn_tier_settings(self) -> tuple[tuple[str, float, float, float, bool], ...]:
        """(field prefix, long s, short s, threshold, pages) of each tier."""
        return (
            ("burn", self.burn_long_s, self.burn_short_s, self.burn_threshold, True),
            (
                "burn_slow",
                self.burn_slow_long_s,
                self.burn_slow_short_s,
                self.burn_slow_threshold,
                True,
            ),
            (
                "burn_ticket",
                self.burn_ticket_long_s,
                self.burn_ticket_short_s,
                self.burn_ticket_threshold,
                False,
            ),
        )


def route_config(
    route: str, defaults: DetectionConfig, routes: Mapping[str, DetectionConfig]
) -> DetectionConfig:
    """The settings of one series: an exact route key, else the first glob that matches it (in
    order), else ``defaults``. The key ``"*"`` names the service-wide series only; it is not a
    glob for "every route" (that is what ``defaults`` are)."""
    exact = routes.get(route)
    if exact is not None:
        return exact
    if route != SERVICE_WIDE:
        for glob, config in routes.items():
            if glob != SERVICE_WIDE and fnmatchcase(route, glob):
                return config
    return defaults
