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

- **Targets not met** (75.38 / 70.13 / 80.77: ARTime, contextOSE, ARTime). The ensemble is
  ahead of numenta (HTM, 71.36 / 65.37 / 75.28), knncad and, in standard, contextOSE (72.82), but
  2.3 / 2.5 / 3.9 points behind the leaders (was 3.2 / 4.4 / 4.6 before the sixth pass, below:
  a series' own score tail). It stays strictly causal: no
  whole-file minimum and maximum, no file length. contextOSE and ARTime use both (NAB hands them
  to detectors), and that is most of their lead. Our own rewrites of both algorithms (scratch
  code, written from their descriptions) reproduce the published rows when given the whole-file
  range and length (ARTime 75.38 / 65.48 / 80.77 exactly; contextOSE 72.77 / 70.10 / 75.82) and
  score about 51 / 41 / 56 (ARTime) and 44-54 standard (contextOSE) when made causal. Under the
  same causal rule the ensemble leads both by about 20 points (fourth pass below).
- **The suite members alone**: `robust` and `seasonal` score 0: their scores are continuous
  (every point gets one), so every threshold NAB tries floods the corpus with false positives,
  and "detect nothing" wins. `cusum` alone scores about 21. The ensemble's score comes from its
  novelty ratio, shape novelty and one-alarm muting (steps 3-5 of its docstring).
- **Throughput**: the scalar API (one Python object per series, what the engine uses) is far
  under 200k points/s; the target is met by the numpy batch API
  (`stanch.core.detectors.batch.BatchEnsemble`), which gives the same scores (to 1e-12).
- **Memory**: the 2 KB per series target is met by the batch API (the sequence-novelty bitsets
  are packed into 82 bytes). Scalar objects keep their daily profile and residual ring as
  packed `array('d')` (half of what lists of floats took: 9,653 -> about 4,600 B); the rest
  is the overhead of a dozen small Python objects per series.

## What was tried (third pass, 2026-11-25: per-scale records, one alarm per event)

All numbers: in-sample NAB v1.1 on the 44 files, standard / low FP / low FN (windows hit, false
positives at the standard threshold). Start: the second pass's `context` detector (ensemble +
sequence novelty, boost 0.5, one record over all scales, 300-point refractory): 62.88 / 56.21 /
66.82 (62/83, 102 FP). Measured with scratch scripts over the same scorer.

| change (cumulative when kept) | standard | low FP | low FN | kept? |
|---|---:|---:|---:|---|
| one record **per time scale** (a one-point spike no longer hides a later level shift), margin 2 | 64.15 | 54.73 | 69.27 | yes |
| margin 3 | 64.77 | 57.17 | 69.29 | yes |
| record = **runner-up** block maximum, not the maximum (one freak event does not blind the detector) | 65.68 | 56.21 | 71.40 | yes |
| record half-life 4000 (was 2000); 8000 / never decays | 68.52; 66.92 / 66.24 | 59.55 | 73.39 | yes (4000) |
| novelty boost 0.3 (was 0.5); 0.0 | 68.57; 64.68 | 61.54 | 73.03 | yes (0.3) |
| **after an alarm, mute every point for 29 points** (a rising burst was 5-10 detections) | 69.97 | 64.86 | 73.55 | yes |
| quiet period 200 points (was 300): windows of short files start right after NAB's probation | 72.15 | 66.90 | 75.81 | yes |
| no refractory besides the mute (was 300 points of "lower scores muted") | **72.83** | **67.14** | **76.66** | **yes (70/83, 89 FP)** |
| mute 60 / 100 / 300 points; mute for a day of wall-clock time | 70.3 / 69.7 / 63.5; 69.7 | 65.4 / 65.4 / 60.1; 65.8 | 73.7 / 72.9 / 66.4; 73.0 | no: long mutes swallow the next window of short files |
| re-arm a mute on a much larger score | 70.2-70.7 | 65.3-66.3 | 73.7-74.0 | no |
| escalation steps instead of a mute (+0.05 ... +0.2 over the last peak) | 63.9-67.8 | 56.1-61.7 | 68.3-71.7 | no |
| record = max(runner-up, 0.3-0.5 x record); third-largest | 66.5-67.6; 63.6 | 59.7-60.1; 51.3 | 70.9-72.0; 70.1 | no |
| a dispersion channel (mean absolute first difference over 6 / 24 points) | 63.6-64.6 | 55.1-56.8 | 68.5-69.2 | no |
| scales (1, 6, 24, 96) | 64.8 (before the mute) | 55.3 | 70.1 | no |
| records learned from point 50 / 100 instead of after warm-up | 68.50 / 71.57 | 62.98 / 65.73 | 72.46 / 75.43 | no |
| half-life 500 / 2000; record lag 48 / 96; levels 6 / 10; mute 20 / 40 | 68.9 / 68.6; 72.0 / 72.3; 72.5 / 72.2; 72.0 / 72.8 | 63.8 / 62.6; 66.6 / 66.0; 67.8 / 65.3; 65.6 / 67.1 | 73.0 / 72.7; 75.7 / 76.3; 76.0 / 76.3; 76.1 / 76.6 | no: the setting sits on a plateau |

Tried in parallel and not adopted (scratch code, same scorer): an ARTime-like shape-novelty
detector (own implementation: blocks of 4 points, 80 levels, nearest of 48 prototypes of 8 block
values, novelty ratio of the distance) reaches 50.9 / 44.1 / 56.2 alone (leave-one-category-out
47.7 / 41.1 / 50.3) and adds about 2 points as `max(ensemble, 0.8 x shape)` to the second-pass
detector; a literal fuzzy-ART version 20-31. Numenta-style anomaly likelihood on the bounded
score 35-60, an empirical tail-frequency score 60-62. A fourth, exponentially weighted long scale
(half-life 48 points) with a shorter record memory (1000) added 2-4 points to the second-pass
detector; it is the first thing to try on top of this one.

## Fourth pass (2026-11-25): a product fix, then a search that found no gain

**Kept (a correctness fix, not a NAB gain):** the daily profile learned per *point* (rate 0.4),
so on a 1 s series a four-minute flood (240 points) became "usual at this time of day" within
the flood; the engine needed a special "calm" rule after spikes. It now learns once per *visit*
of a slot (rate 0.5 of a clipped step per visit), a visit summarized by the median of 8
sub-block means, and a slot never seen has no expectation until its first visit ends. The calm
rule is gone, the demo's flood incident resolves after the flood ends (not while it lasts) and
no drop is raised when it ends. NAB: 72.83 / 67.14 / 76.66 -> **72.15 / 65.77 / 76.21** (70/83
windows, 100 FP). Variants: visit mean instead of median, rate 0.4 / 0.5 / 0.55 / 0.64:
72.27 / 72.51 / 72.57 / 72.56 standard; a first visit's own points as its expectation while
under way 72.51 (but the demo's flood, opening a slot's first visit, then ends in a false drop);
the slot before as a stand-in 70.30; median version at rate 0.4 / 0.6: 70.89 / 72.01; a visit
learning one rate per sub-block, `1 - (1 - rate) ** blocks`, 71.94 at best. Leave one category
out fell more (71.77 -> 69.91 standard): `art_daily_flatmiddle`'s only window now peaks at
0.4975 (was 0.5105), exactly the in-sample threshold, so a threshold chosen on the other four
categories misses it (artificialWithAnomaly 86.1 -> 70.5). The batch API's throughput fell from
1.59 M to about 1.1 M points/s (0.74-1.19 M over three runs today: the per-visit median sorts 9
values per series and step); its state grew to 1,847 B per series (the 8 sub-block means).

**Tried on the ensemble, not kept** (standard / low FP / low FN on the 44 files):

| change | standard | low FP | low FN | windows, FP |
|---|---:|---:|---:|---|
| residuals divided by the chosen baseline's spread before the time scales (clip 10 / 30 / 100) | 61.8 / 61.0 / 59.3 | 55.2 / 53.8 / 51.5 | 66.5 / 66.4 / 64.4 | 61-63, 110-159 FP |
| scale-1 z from the baseline's point spread (replace / larger / smaller of the two) | 72.26 / 72.46 / 72.76 | 65.97 / 66.37 / 67.01 | 76.28 / 76.42 / 76.62 | 70, 90-99 FP (old base 72.83) |
| alarm fatigue: exponent x (1 + b x recent alarms), half-life 300-3000 points, b 0.05-0.3 | 58.9-72.3 | 54.3-67.3 | 64.6-75.9 | 58-69 |
| fine value novelty (first visit of one of 16-32 cells of the warm-up range, +-1 cell) as a boost 0.3-0.7 | 67.8-70.8 | 56.3-61.5 | 74.5-76.5 | 72-75, 184-261 FP |
| the same as a second alarm path with point z >= 3 / 5 / 8 | 66.2-68.5 | 45.5-51.0 | 74.7-76.2 | 76-77, 274-329 FP |
| records per direction (up and down kept apart) | 72.41 | 65.10 | 76.79 | 71, 115 FP |
| an AR(4 / 8) prediction-error channel (normalized LMS) as a fourth scale | 71.8-72.6 | 64.6-65.5 | 76.0-76.9 | 70-71, 106-122 FP |
| records in the series' units (margin in spreads) instead of z | 70.0 (margin 3), 70.6 (2) | 63.6 | 74.7-75.5 | 69-70, 116-126 FP |
| the time scales' own half-life 300 / 600 / 2000 (1000 kept) | 65.3 / 71.6 / 68.9 | 58.1 / 65.8 / 62.6 | 70.3 / 75.4 / 72.8 | |
| mute after any score >= 0.3 / 0.4 / 0.45 (not only alarms) | 57.6 / 63.0 / 68.5 | 48.7 / 54.6 / 60.1 | 66.9 / 70.9 / 73.8 | |

**What the search says.** At the moment of an alarm, true and false alarms look alike on
everything the detector knows: driving time scale (74 % vs 76 % scale 1), baseline (70 % vs 69 %
seasonal), direction, sequence novelty (mean 0.53 for false, 0.48 for true alarms). False alarms
follow an earlier alarm more closely (median gap 412 vs 1093 points), but every way of
penalizing recent alarms lost more windows than it saved false positives. With thresholds
chosen per file (an oracle) the same scores would reach about 78.5 standard, so the ranking
within files is decent and the loss is in calibration across files.

**Ceiling of a second opinion.** Adding numenta's published scores to the third-pass ensemble,
`max(ensemble, c x numenta)`, gives at best 76.32 / 68.79 / 80.60 (c = 0.6; 74/83 windows, 119
FP): even a full HTM alongside would leave low FP under contextOSE's 70.13. Our own rewrite of
the contextOSE (CAD OSE) algorithm, written from its description (scratch code), reproduces the
published row with the whole-file range and rest period NAB hands it: 72.77 / 70.10 / 75.82
(68/83, 43 FP; 68.38 / 65.85 / 71.29 with a 150-point rest period). With a causal range it
reaches 43.8-54.1 standard (running min/max; the first 150 or 300 points' range with margins of
0-100 %, extended or frozen), and `max(ensemble, c x causal CAD)` at best 73.0 / 66.2 / 77.2
(c = 0.6), within noise of the ensemble alone. Most of contextOSE's published score comes from
knowing each file's range in advance, which a streaming detector cannot.

**ARTime, the same check.** Our rewrite of ARTime (downsampling by a step derived from the
probation length, values normalized by the file's min/max into 80 levels, 16 wavelet and level
features, dual-vigilance fuzzy ART, alarm on a new category) reproduces the published row with
the whole-file range and length: 75.38 / 65.48 / 80.77 (76/83 windows, 158 FP). Range made
causal (first points' range widened when exceeded, or running min/max), length still known:
55.8-57.0 standard. Length fixed (probation 750), range still known: 62.3. Both causal: 50.9 /
40.9-42.3 / 55.6-56.4. `max(ensemble, c x causal ARTime)` never beats the ensemble alone (best
71.88 / 65.20 / 76.03); with the non-causal ARTime it would give 75.36 / 68.45 / 79.56 (c = 0.6).
The targets in the issue are therefore set by detectors that see each whole file's range and
length before scoring it; held to the issue's own rule (each point scored from the past only),
the best published methods score about 51-54, and the ensemble 72.15.

**Fifth pass (2026-11-25, session 4), not kept:** a variance-stabilizing transform of
positive series (log1p or sqrt of the value over the median of its first 150 points) scores
55.87 / 50.19 / 59.58 (log) and 66.56 / 61.04 / 71.05 (sqrt); emitting each episode's peak
score once, 3-12 points after it opens (so a rising event counts once at its strength), scores
63.2-70.3 standard: peak strength separates true from false alarms no better than the first
crossing does. The engine's rate signal changed this session (a silent run's missing requests
add up; the daily profile's verdict stands); the ensemble's own scores did not.

**Sixth pass (2026-11-25, session 6): one kept.** Each variant was replayed from a per-point
dump of the ensemble's internal state through this scorer (the harness reproduces 72.15 /
65.77 / 76.21 and the LOCO 69.91 / 63.66 / 73.92 exactly); the kept one was then built into
both APIs and gives the same numbers.

| change | standard | low FP | low FN | windows, FP | LOCO standard |
|---|---:|---:|---:|---|---:|
| **kept: a series' own score tail** (step 6 of the docstring: penalty 0.3 x (running 95th percentile of the series' scores, read off 12 levels 0.45..1.0, half-life 1000) - 0.45)) | **73.09** | **67.64** | **76.84** | 70, 85 | **71.83** (+1.92; low FP 66.25, low FN 75.60) |
| the same with the percentile from an exact window of 1000-4000 scores, tau 0.9-0.97 | 71.2-73.22 | 66.0-67.9 | 74.8-76.9 | 68-70, 80-101 | |
| the same from a one-float running-quantile tracker | 70.8-72.75 | 63.3-67.0 | 75.3-76.6 | 69-70, 89-118 | |
| the ratio divided by its own runner-up/top record; record weight a x record + margin | 55.4-69.3 | 53.3-63.8 | 57.8-73.1 | 52-70 | |
| a fourth EW time scale (half-life 12 / 48 / 96 points, record memory 1000-4000) | 70.8-71.75 | 63.6-65.3 | 75.3-75.95 | 70, 111-141 | |
| a Bayesian online change-point channel (64 run lengths, hazard 1/200), max-combined; with the tail | 73.07; 74.11 | 66.49; 68.57 | 77.23; 77.92 | 71, 103; 71, 87 | -; 72.85 |
| the tail with c and q0 chosen per fold as well | | | | | 69.47 |

Not kept: the change-point channel's whole gain is one window (`ec2_cpu_utilization_24ae8d`'s
second) and it vanishes at a margin of 3.5; its state (64 x 3 floats) would break the 2 KB per
series. Choosing the tail's cost and level per fold is noisy (the Tweets fold picked margin 2,
half-life 8000 and lost), so they are fixed constants, not tuned settings. Earlier alarms within
windows have little left to give: the 70 detected windows fire at a median 0.497 of the window
(the labelled point), mean weight 0.862; the 13 missed peak at 0.03-0.44. A logistic model of
true vs false alarms on the detector's features at alarm time reaches AUC 0.77 in-sample and
0.58 held out: the features do not generalize, as the fourth pass found. The tail costs the
batch API 56 B per series (float32 shares) and the scalar API about 4 us per point. Speed on
this machine varies by 2x from one day to the next: in the same hour as the table above, the
code at this session's start measured 1.16 M (batch) / 38.6 k (scalar) points/s, so this
session's weekly ratios and tail cost the scalar API about a quarter and the batch API little.

Caveat kept in the docstring: until two record blocks exist (about 300 points) the detector is
eager (its only yardstick is the margin), which NAB rewards (short files put windows right after
the probation) and which raises one or two alarms on a fresh series of plain noise; the engine
gates alarms on its own z thresholds too.
"""  # noqa: E501

GRID: dict[str, Sequence[Any]] = {
    "margin": (2.0, 3.0, 4.0),
    "record_half_life": (2000.0, 4000.0, 8000.0),
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
