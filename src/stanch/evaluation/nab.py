"""The NAB v1.1 scoring protocol, as pure functions over row indices and anomaly scores.

Why our own implementation: the Numenta Anomaly Benchmark is the yardstick Stanch's detectors
are held to, and its scorer (Python 2 era, pandas, a multiprocessing pool) cannot run inside
Stanch's tests or CLI. This module mirrors ``nab/sweeper.py`` exactly, including the details
that move scores by whole points:

- the probationary period is ``min(floor(0.15 * rows), 750)`` rows; detections there are
  ignored, and so are windows that lie entirely inside it;
- in a window, a detection at row ``i`` earns ``tp * S(y) / S(-1)`` with
  ``y = -(right - i + 1) / width``; only the best (that is, earliest) detection counts, and a
  window with none costs ``-fn``;
- outside windows, a detection costs ``fp * S(y)`` with ``y = |prev_right - i| / (prev_width - 1)``
  after the preceding window, and ``y = 3`` (full cost, ``S = -1``) when no window precedes it;
- a detection is a row whose score is ``>= threshold``; the threshold of a profile is the
  distinct score value that maximizes the raw total over the whole corpus, ties going to the
  highest threshold (NAB starts the sweep at 1.1, "detect nothing");
- normalized = ``100 * (raw - null) / (perfect - null)`` with ``null = -fn * windows`` and
  ``perfect = tp * windows``.

>>> f = ScoredFile("a.csv", scores=(0.0,) * 20 + (1.0,) + (0.0,) * 79, windows=(Window(18, 27),))
>>> r = optimize([f], STANDARD)
>>> r.threshold, round(r.raw, 4), r.normalized > 90
(1.0, 0.9771, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750  # NAB: probationPercent * 5000
NO_DETECTION = 1.1  # NAB's starting threshold: above any score, so nothing is detected


@dataclass(frozen=True, slots=True)
class Profile:
    """One NAB application profile: the weights of a true positive, false positive, miss."""

    name: str
    tp: float
    fp: float
    fn: float


STANDARD = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
LOW_FP = Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)
PROFILES: tuple[Profile, ...] = (STANDARD, LOW_FP, LOW_FN)


@dataclass(frozen=True, slots=True)
class Window:
    """An anomaly window as inclusive row indices."""

    start: int
    end: int

    @property
    def width(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class ScoredFile:
    """A detector's scores for one data file, with that file's labeled windows."""

    name: str
    scores: Sequence[float]
    windows: tuple[Window, ...]


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file under one profile at one threshold. Counts are windows and detections."""

    name: str
    raw: float
    windows: int
    detected: int
    false_positives: int


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """A detector's NAB result for one profile: the corpus-optimal threshold and its scores."""

    profile: Profile
    threshold: float
    raw: float
    null: float
    perfect: float
    files: tuple[FileResult, ...]

    @property
    def normalized(self) -> float:
        span = self.perfect - self.null
        return 100.0 * (self.raw - self.null) / span if span else 0.0


def probationary_length(rows: int) -> int:
    """Rows at the start of a file that are never scored."""
    return int(min(math.floor(PROBATION_FRACTION * rows), PROBATION_FRACTION * 5000))


def scaled_sigmoid(y: float) -> float:
    """NAB's ``2 * sigmoid(-5y) - 1``, clamped to -1 from ``y >= 3`` on."""
    if y >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


_MAX_TP = scaled_sigmoid(-1.0)


class _Row(NamedTuple):
    """A scorable row: its score and what a detection there is worth (profile-free parts)."""

    score: float
    window: int  # window id within the file, or -1 outside every window
    weight: float  # S(y) / S(-1) in a window, S(y) outside


def _rows(file: ScoredFile) -> list[_Row]:
    """The scorable rows of one file, as ``nab.sweeper.Sweeper.calcSweepScore`` sees them."""
    probation = probationary_length(len(file.scores))
    windows = sorted(file.windows, key=lambda w: w.start)
    rows: list[_Row] = []
    k = 0  # next window
    current: Window | None = None
    prev: Window | None = None
    for i, score in enumerate(file.scores):
        if current is None and k < len(windows) and i == windows[k].start:
            current = windows[k]
            k += 1
        if current is not None:
            weight = scaled_sigmoid(-(current.end - i + 1) / current.width) / _MAX_TP
            window = k - 1
        else:
            y = 3.0 if prev is None else abs(prev.end - i) / max(prev.width - 1, 1)
            weight = scaled_sigmoid(y)
            window = -1
        if i >= probation:
            rows.append(_Row(score, window, weight))
        if current is not None and i == current.end:
            prev, current = current, None
    return rows


def _prepare(files: Sequence[ScoredFile]) -> list[tuple[ScoredFile, list[_Row]]]:
    return [(f, _rows(f)) for f in files]


def _counted_windows(rows: Iterable[_Row]) -> set[int]:
    """Windows with at least one scorable row: those are the ones a miss costs."""
    return {r.window for r in rows if r.window >= 0}


def sweep(files: Sequence[ScoredFile], profile: Profile) -> list[tuple[float, float]]:
    """``(threshold, raw score)`` for every distinct score in the corpus, highest threshold first.

    The first entry is ``(1.1, null score)``. A threshold's raw score counts every row whose
    score is ``>=`` that threshold as a detection.
    """
    return _sweep(_prepare(files), profile)


def _sweep(
    prepared: Sequence[tuple[ScoredFile, list[_Row]]], profile: Profile
) -> list[tuple[float, float]]:
    # (score, corpus-wide window id or -1, weight) for every scorable row of the corpus.
    rows: list[tuple[float, int, float]] = []
    best: dict[int, float] = {}
    base = 0
    for f, file_rows in prepared:
        for r in file_rows:
            w = base + r.window if r.window >= 0 else -1
            rows.append((r.score, w, r.weight))
            if w >= 0:
                best[w] = -profile.fn
        base += len(f.windows)
    total = -profile.fn * len(best)
    out: list[tuple[float, float]] = []
    threshold = NO_DETECTION
    rows.sort(key=lambda r: r[0], reverse=True)
    for score, window, weight in rows:
        if score != threshold:
            out.append((threshold, total))
            threshold = score
        if window < 0:
            total += weight * profile.fp
        else:
            gain = weight * profile.tp
            if gain > best[window]:
                total += gain - best[window]
                best[window] = gain
    out.append((threshold, total))
    return out


def score_file(file: ScoredFile, profile: Profile, threshold: float) -> FileResult:
    """One file's raw score when every row scoring ``>= threshold`` is a detection."""
    return _score_rows(file, _rows(file), profile, threshold)


def _score_rows(
    file: ScoredFile, rows: Sequence[_Row], profile: Profile, threshold: float
) -> FileResult:
    windows = _counted_windows(rows)
    best = dict.fromkeys(windows, -profile.fn)
    fp_total = 0.0
    false_positives = 0
    for row in rows:
        if row.score < threshold:
            continue
        if row.window < 0:
            fp_total += row.weight * profile.fp
            false_positives += 1
        else:
            best[row.window] = max(best[row.window], row.weight * profile.tp)
    detected = sum(1 for w in windows if best[w] > -profile.fn)
    return FileResult(
        file.name, fp_total + sum(best.values()), len(windows), detected, false_positives
    )


def optimize(
    files: Sequence[ScoredFile], profile: Profile, threshold: float | None = None
) -> ProfileResult:
    """Score a corpus under ``profile``: at ``threshold`` if given, else at the optimal one."""
    return _optimize(_prepare(files), profile, threshold)


def _optimize(
    prepared: Sequence[tuple[ScoredFile, list[_Row]]],
    profile: Profile,
    threshold: float | None,
) -> ProfileResult:
    if threshold is None:
        curve = _sweep(prepared, profile)
        # max() keeps the first of equal scores: the highest threshold, as NAB's stable sort does.
        threshold = max(curve, key=lambda point: point[1])[0]
    results = tuple(_score_rows(f, rows, profile, threshold) for f, rows in prepared)
    windows = sum(r.windows for r in results)
    return ProfileResult(
        profile=profile,
        threshold=threshold,
        raw=sum(r.raw for r in results),
        null=-profile.fn * windows,
        perfect=profile.tp * windows,
        files=results,
    )


def score_corpus(
    files: Sequence[ScoredFile], threshold: float | None = None
) -> tuple[ProfileResult, ...]:
    """All three profiles, each at its own optimal threshold unless ``threshold`` is given."""
    prepared = _prepare(files)
    return tuple(_optimize(prepared, p, threshold) for p in PROFILES)
