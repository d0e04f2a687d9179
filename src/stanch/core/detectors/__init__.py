"""Streaming detectors behind one protocol: ``update(t, value, weight) -> Score``.

Each detector scores a point using only the past, then learns from it. A score of 0.5 or more
means the detector's own threshold is crossed; alert hysteresis (``stanch.core.alerts``) decides
whether that becomes an alert. :class:`EnsembleDetector` is the default for metric series;
``stanch.core.detectors.batch.BatchEnsemble`` runs it over many series per numpy step.
"""

from stanch.core.detectors.base import Detector, Direction, Score
from stanch.core.detectors.burn_rate import BurnRateDetector, BurnTier, workbook_tiers
from stanch.core.detectors.changepoint import CusumDetector
from stanch.core.detectors.ensemble import EnsembleDetector
from stanch.core.detectors.poisson import ErrorBurstDetector
from stanch.core.detectors.robust import RobustBaseline
from stanch.core.detectors.seasonal import SeasonalBaseline

__all__ = [
    "BurnRateDetector",
    "BurnTier",
    "CusumDetector",
    "Detector",
    "Direction",
    "EnsembleDetector",
    "ErrorBurstDetector",
    "RobustBaseline",
    "Score",
    "SeasonalBaseline",
    "workbook_tiers",
]
