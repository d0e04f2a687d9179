"""Detection benchmark: NAB v1.1 scores, a leave-one-category-out check, throughput and memory.

Runs every suite detector over the NAB corpus (``$STANCH_NAB_DIR`` or the shared copy), scores
them with Stanch's NAB scorer (thresholds optimized per profile, as NAB does), then checks that
the ensemble's few global settings generalize: for each category, pick the setting (and the
threshold) on the other four categories and score the held-out one. Finally measures the
ensemble's throughput (scalar and numpy batch API) and memory per series. Run from the
repository root::

    .venv/bin/python bench/detection.py [--out bench/results/detection.md] [--jobs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from stanch.core.detectors import EnsembleDetector
from stanch.core.detectors.batch import BatchEnsemble
from stanch.evaluation.corpus import DataFile, default_dir, load_corpus
from stanch.evaluation.nab import PROFILES, STANDARD, ProfileResult, ScoredFile, optimize
from stanch.evaluation.runner import DETECTORS, run_file

PUBLISHED = [  # the README's official numbers on exactly these 44 files
    ("ARTime (best published)", 75.38, 65.48, 80.77),
    ("contextOSE", 72.82, 70.13, 75.86),
    ("numenta (HTM)", 71.36, 65.37, 75.28),
    ("knncad", 62.29, 47.52, 68.83),
    ("windowedGaussian", 41.51, 16.53, 51.37),
]
# The ensemble's global settings searched in the leave-one-category-out check.
NOTES = """
## Notes

- **Targets not met.** The ensemble scores below ARTime, contextOSE and numenta in every profile
  (and below knncad in standard). The leave-one-category-out total is about 6 points lower than
  the in-sample score: most of the settings generalize, but the corpus is small.
- **The suite members alone**: `robust` and `seasonal` score 0: their scores are continuous
  (every point gets one), so every threshold NAB tries floods the corpus with false positives,
  and "detect nothing" (threshold 1.1) wins. `cusum` alone scores 20.7. Most of the ensemble's
  score comes from steps 3 and 4 of its docstring (novelty ratio, refractory muting).
- **Tried, and dropped because NAB got worse** (standard profile, in-sample): an EWMA z-score
  with a cooldown started at the detector's own 0.5 threshold (38.8: the cooldown does not line
  up with the threshold NAB picks); Numenta-style anomaly likelihood on the log of the raw
  z-score (25-27); a first-difference z-score as an extra signal (57.4 with it, 60.6 without);
  CUSUM as an ensemble member next to the multi-scale means (58.1-59.2 vs 59.8); 96 daily bins
  instead of 144 (-3); scales (1, 4, 16, 64) instead of (1, 6, 24) (same score, more memory).
- **Kept although NAB does not reward it**: the weekday offsets of the seasonal baseline cost
  0.45 points here (NAB's files are mostly under two weeks, too short to learn a weekly shape),
  and operational traffic has weekly shapes.
- **Throughput**: the scalar API (one Python object per series, what the engine uses) runs at
  about 100k points/s; the 200k points/s target is met by the numpy batch API
  (`stanch.core.detectors.batch.BatchEnsemble`), which gives the same scores (to 1e-12).
- **Memory**: the 2 KB per series target is met by the batch API; scalar objects hold their
  144-slot daily profile as Python floats and take about 8 KB.

## What was tried (2026-11-25, second pass: pattern novelty, `context` detector)

All numbers: in-sample NAB v1.1 on the 44 files, standard / low FP / low FN, thresholds optimized
per profile. Baseline `ensemble`: 60.12 / 51.96 / 65.78 (64/83 windows, 189 FP).

| attempt | standard | low FP | low FN | kept? |
|---|---:|---:|---:|---|
| CAD-like sequence novelty alone (8 levels of the causal min/max range, orders 1-4, mute 150 after >= 0.75) | 51.48 | 35.68 | 58.42 | no |
| same, 16 levels / order 2 / mute 300 | 43.7 / 36.6 / 42.3 | | | no |
| `max(ensemble ratio, w * novelty)`, w in 0.4-0.8 | 55.7-60.1 | 50.0-52.0 | 62.0-65.8 | no |
| novelty as a gate (`a` if novel else `0.8 a`) | 60.73 | 54.71 | 64.18 | no |
| **novelty sharpens size: `a ** (1 - 0.5 nov)`, 8 levels, order 2** (`context`) | **62.88** | **56.21** | **66.82** | **yes** |
| same, boost 0.3 / 0.4 / 0.6 / 0.7 | 62.0 / 61.6 / 61.5 / 60.7 | 55.3 / 54.4 / 53.8 / 52.3 | 66.2 / 66.4 / 66.3 / 66.2 | |
| same, order 1 / 3; levels 6 / 12 / 16 | 58.9 / 61.2; 62.4 / 61.1 / 60.4 | 53.1 / 54.2; 57.4 / 55.3 / 53.9 | 64.0 / 65.7; 66.1 / 65.2 / 65.6 | |
| same, refractory 200 / 450 | 61.1 / 59.4 | 53.7 / 52.9 | 66.0 / 64.2 | |
| same, ensemble margin 2.0; record half-life 4000 | 62.7; 61.5 | 56.9; 55.3 | 66.7; 65.5 | |
| decaying peak instead of a hard refractory (half-life 50-1000) | 60.6-61.8 | 51.1-53.9 | 65.3-66.4 | no |
| no novelty credit for 50-300 points after the range grows | 55.3-56.1 | 47.0-48.8 | 60.2-60.7 | no: most of the gain *is* the novelty right after a new extreme |
| shorter warm-up/quiet (100-200 points) | 55.9-57.4 | 48.0-50.8 | 61.5-61.8 | no |
| ensemble alone: margin 0.5/2, half-life 500/2000, record lag 24/144, scales (1,6,24,96) / (1,3,12,48), clip 2, no weekly | 57.0-60.7 | 48.4-53.0 | 63.7-66.6 | no: the ensemble is at a local optimum |

`context` leave-one-category-out (fixed setting, thresholds chosen on the other four categories),
raw std / lowFP / lowFN: artificialNoAnomaly 0 / 0 / 0; artificialWithAnomaly 4.08 / 3.09 / 4.08
(83.97 / 75.72 / 89.32 normalized); realAWSCloudwatch 2.18 / -0.92 / -8.82 (53.63 / 48.47 / 56.87);
realAdExchange -0.58 / -1.29 / -6.58 (47.94 / 45.38 / 51.01); realTweets 13.13 / 7.23 / 9.13
(69.89 / 60.95 / 75.89); **all five held out: 61.33 / 54.89 / 65.79** (same check for `ensemble`
at its fixed default setting: 58.86 / 50.07 / 64.94).

Cost: scalar `context` runs at about 88k points/s (ensemble: about 115k on the same machine);
its novelty state is two bitsets (72 + 584 bits) plus a running min/max and two levels, about
100 B on top of the ensemble's; traced memory per scalar object 9.1 KB (ensemble 8.4 KB). No batch
version: `BatchEnsemble` still mirrors `EnsembleDetector` only.

**Targets still not met** (75.38 / 70.13 / 80.77). Published contextOSE and ARTime normalize with
the whole file's min and max and size their windows and rest periods from the file length (NAB
hands both to detectors); a causal detector without file length cannot do either. Caveat: on pure
Gaussian noise `context` raises a few alarms per few thousand points (a new extreme shifts the
coarse levels), which the ensemble does not; it is registered for `stanch eval nab --detector
context` but not made the default.
"""  # noqa: E501

GRID: dict[str, Sequence[Any]] = {
    "refractory": (150, 300, 600),
    "record_half_life": (1000.0, 2000.0, 4000.0),
}

_CORPUS: list[DataFile] = []


def _init(root: str) -> None:
    _CORPUS[:] = load_corpus(Path(root))


def _scores(job: tuple[str, dict[str, Any], int]) -> list[float]:
    name, params, index = job
    factory: Callable[[], Any] = DETECTORS[name]
    if params:
        factory = lambda: EnsembleDetector(**params)  # noqa: E731
    return run_file(factory, _CORPUS[index])


def run_all(
    pool: ProcessPoolExecutor, corpus: list[DataFile], name: str, params: dict[str, Any]
) -> list[ScoredFile]:
    jobs = [(name, params, i) for i in range(len(corpus))]
    results = list(pool.map(_scores, jobs, chunksize=1))
    return [ScoredFile(f.name, s, f.windows) for f, s in zip(corpus, results, strict=True)]


def three(
    files: Sequence[ScoredFile], thresholds: Sequence[float | None] = (None,) * 3
) -> list[ProfileResult]:
    return [optimize(files, p, t) for p, t in zip(PROFILES, thresholds, strict=True)]


def loco(
    corpus: list[DataFile], runs: dict[tuple[tuple[str, Any], ...], list[ScoredFile]]
) -> list[tuple[str, str, list[float], list[float]]]:
    """Per held-out category: chosen setting, held-out normalized scores, held-out raw scores."""
    categories = sorted({f.category for f in corpus})
    rows = []
    for held in categories:
        train_idx = [i for i, f in enumerate(corpus) if f.category != held]
        test_idx = [i for i, f in enumerate(corpus) if f.category == held]
        best_key, best_train = None, -1e9
        for key, scored in runs.items():
            train = [scored[i] for i in train_idx]
            value = optimize(train, STANDARD).normalized
            if value > best_train:
                best_key, best_train = key, value
        assert best_key is not None
        scored = runs[best_key]
        train = [scored[i] for i in train_idx]
        test = [scored[i] for i in test_idx]
        thresholds = [optimize(train, p).threshold for p in PROFILES]
        held_out = three(test, thresholds)
        setting = ", ".join(f"{k}={v:g}" for k, v in best_key)
        rows.append((held, setting, [r.normalized for r in held_out], [r.raw for r in held_out]))
    return rows


def throughput() -> dict[str, float]:
    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    n, steps = 10_000, 300
    batch = BatchEnsemble(n)
    values = rng.normal(50, 5, (steps, n))
    start = time.perf_counter()
    for i in range(steps):
        batch.update(1.7e9 + 60.0 * i, values[i])
    out["batch_points_per_s"] = n * steps / (time.perf_counter() - start)
    out["batch_bytes_per_series"] = batch.nbytes() / n
    tracemalloc.start()
    batch = BatchEnsemble(n)
    for i in range(50):
        batch.update(1.7e9 + 60.0 * i, values[i])
    out["batch_traced_bytes_per_series"] = tracemalloc.get_traced_memory()[0] / n
    tracemalloc.stop()

    detector = EnsembleDetector()
    xs = rng.normal(50, 5, 100_000).tolist()
    start = time.perf_counter()
    for i, x in enumerate(xs):
        detector.update(1.7e9 + 60.0 * i, x)
    out["scalar_points_per_s"] = len(xs) / (time.perf_counter() - start)
    tracemalloc.start()
    detectors = [EnsembleDetector() for _ in range(1000)]
    for i in range(600):
        for d in detectors:
            d.update(1.7e9 + 300.0 * i, 5.0 + i % 7)
    out["scalar_traced_bytes_per_series"] = tracemalloc.get_traced_memory()[0] / 1000
    tracemalloc.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/detection.md"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = default_dir()
    if not (root / "labels").is_dir():
        sys.exit(f"NAB data not found at {root}; set STANCH_NAB_DIR")
    corpus = load_corpus(root)
    lines: list[str] = []
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(str(root),)) as pool:
        start = time.perf_counter()
        detector_rows = []
        for name in DETECTORS:
            results = three(run_all(pool, corpus, name, {}))
            detector_rows.append((name, results))
            print(name, [round(r.normalized, 2) for r in results], flush=True)
        nab_seconds = time.perf_counter() - start
        runs = {}
        for combo in itertools.product(*GRID.values()):
            params = dict(zip(GRID, combo, strict=True))
            runs[tuple(params.items())] = run_all(pool, corpus, "ensemble", params)
        loco_rows = loco(corpus, runs)
    tp = throughput()

    ensemble = dict(detector_rows)["ensemble"]
    lines += [
        "# Detection benchmark",
        "",
        f"{dt.date.today()} · {platform.python_implementation()} {platform.python_version()} · "
        f"{platform.machine()} · `bench/detection.py` · NAB corpus: {len(corpus)} files, "
        f"{sum(len(f.values) for f in corpus):,} rows, "
        f"{sum(len(f.windows) for f in corpus)} windows",
        "",
        "## Summary: NAB score, throughput and memory of the default ensemble",
        "",
        "| NAB standard | NAB low FP | NAB low FN | points/s, batch API (10k series, 1 core) "
        "| points/s, scalar API | state per series, batch | per series, scalar objects |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {ensemble[0].normalized:.2f} | {ensemble[1].normalized:.2f} | "
        f"{ensemble[2].normalized:.2f} | {tp['batch_points_per_s']:,.0f} | "
        f"{tp['scalar_points_per_s']:,.0f} | {tp['batch_bytes_per_series']:,.0f} B "
        f"(traced {tp['batch_traced_bytes_per_series']:,.0f} B) | "
        f"{tp['scalar_traced_bytes_per_series']:,.0f} B |",
        "",
        "## NAB v1.1 on the 44 files (thresholds optimized per profile by the protocol)",
        "",
        "| detector | standard | reward_low_FP_rate | reward_low_FN_rate "
        "| thresholds (std / lowFP / lowFN) | windows hit (std) | false positives (std) |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, results in detector_rows:
        hit = sum(f.detected for f in results[0].files)
        fps = sum(f.false_positives for f in results[0].files)
        lines.append(
            f"| stanch `{name}` | {results[0].normalized:.2f} | {results[1].normalized:.2f} | "
            f"{results[2].normalized:.2f} | "
            + " / ".join(f"{r.threshold:.4f}" for r in results)
            + f" | {hit}/83 | {fps} |"
        )
    for name, *scores in PUBLISHED:
        lines.append(
            f"| {name} (official) | " + " | ".join(f"{s:.2f}" for s in scores) + " | | | |"
        )
    lines += [
        "",
        f"Detector runs took {nab_seconds:.0f} s for {len(DETECTORS)} detectors "
        f"({args.jobs} processes).",
        "",
        "## Generalization: leave one category out",
        "",
        "For each category, the ensemble setting (grid: "
        + ", ".join(f"`{k}` in {tuple(v)}" for k, v in GRID.items())
        + ") and the three thresholds are chosen on the other four categories; the held-out "
        "category is then scored with them. Normalized per held-out category, and overall from "
        "the sum of the held-out raw scores.",
        "",
        "| held-out category | setting chosen on the other four | standard | low FP | low FN |",
        "|---|---|---:|---:|---:|",
    ]
    by_cat: dict[str, list[DataFile]] = {}
    for f in corpus:
        by_cat.setdefault(f.category, []).append(f)
    raw_sum = [0.0, 0.0, 0.0]
    for held, setting, normalized, raw in loco_rows:
        raw_sum = [a + b for a, b in zip(raw_sum, raw, strict=True)]
        no_windows = not any(f.windows for f in by_cat[held])
        cells = " | ".join("n/a" if no_windows else f"{v:.2f}" for v in normalized)
        lines.append(f"| {held} | {setting} | {cells} |")
    windows = sum(len(f.windows) for f in corpus)
    overall = [
        100.0 * (raw + p.fn * windows) / (p.tp * windows + p.fn * windows)
        for raw, p in zip(raw_sum, PROFILES, strict=True)
    ]
    lines.append(
        "| **all five, held out** | | " + " | ".join(f"**{v:.2f}**" for v in overall) + " |"
    )
    lines += [
        "",
        "A category without labeled windows (artificialNoAnomaly) has no normalized score "
        "(null = perfect); its false positives still count in the overall row.",
        "",
    ]
    lines += NOTES.strip("\n").splitlines()
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
