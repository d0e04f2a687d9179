"""Run a Stanch detector over a NAB corpus the way NAB runs one: each file once, in time order.

Detectors see ``(t, value)`` only: no labels, no file length, no per-file settings; one fresh
detector per file, built by the same factory for every file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from stanch.core.detectors import (
    CusumDetector,
    Detector,
    EnsembleDetector,
    RobustBaseline,
    SeasonalBaseline,
)
from stanch.evaluation.corpus import DataFile
from stanch.evaluation.nab import ScoredFile

DetectorFactory = Callable[[], Detector]

# Metric detectors only: the burn-rate and error-burst detectors judge error counts against
# requests served, which NAB's single-valued series do not carry.
DETECTORS: dict[str, DetectorFactory] = {
    "ensemble": EnsembleDetector,
    "robust": lambda: RobustBaseline(half_life=1000, warmup=150),
    "seasonal": SeasonalBaseline,
    "cusum": CusumDetector,
}
DEFAULT_DETECTOR = "ensemble"


def epoch_seconds(timestamp: str) -> float:
    """NAB timestamps are naive; read them as UTC so the seasonal profile sees wall-clock time."""
    parsed = datetime.fromisoformat(timestamp.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def run_file(factory: DetectorFactory, file: DataFile) -> list[float]:
    """Anomaly scores in [0, 1] for every row of ``file``, from a fresh detector."""
    detector = factory()
    return [
        detector.update(epoch_seconds(ts), value).value
        for ts, value in zip(file.timestamps, file.values, strict=True)
    ]


def run_corpus(
    factory: DetectorFactory, files: Iterable[DataFile]
) -> Iterator[tuple[DataFile, ScoredFile]]:
    """Each file with its scores, ready for :func:`stanch.evaluation.nab.score_corpus`."""
    for file in files:
        scores = run_file(factory, file)
        yield file, ScoredFile(file.name, scores, file.windows)
