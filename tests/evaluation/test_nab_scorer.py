"""The NAB v1.1 scorer: hand-made cases with known scores, then the official reference numbers."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest

import stanch.evaluation.nab as nab_module
from stanch.evaluation.corpus import default_dir, load_corpus, read_scores
from stanch.evaluation.nab import (
    LOW_FN,
    LOW_FP,
    STANDARD,
    ScoredFile,
    Window,
    optimize,
    probationary_length,
    scaled_sigmoid,
    score_corpus,
    score_file,
    sweep,
)

ROWS = 100  # probation: 15 rows
WINDOW = Window(40, 49)  # width 10


def scores_at(*rows: int, value: float = 1.0, n: int = ROWS) -> list[float]:
    out = [0.0] * n
    for r in rows:
        out[r] = value
    return out


def one_file(scores: list[float], windows: tuple[Window, ...] = (WINDOW,)) -> ScoredFile:
    return ScoredFile("cat/f.csv", scores, windows)


def test_probationary_period_is_15_percent_capped_at_750_rows() -> None:
    """NAB: min(floor(0.15 * rows), 750)."""
    assert probationary_length(100) == 15
    assert probationary_length(4032) == 604
    assert probationary_length(15902) == 750


def test_scaled_sigmoid_matches_nab_reference_points() -> None:
    """S(-1) = 0.98661, S(-0.5) = 0.84828, S(0) = 0, and -1 from y = 3 on."""
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.0) == -1.0
    assert scaled_sigmoid(10.0) == -1.0


def test_detection_at_a_windows_first_row_earns_exactly_tp_weight() -> None:
    """y = -1 at the left edge, scaled by 1/S(-1): a perfect detection is worth tpWeight."""
    assert score_file(one_file(scores_at(40)), STANDARD, 0.5).raw == pytest.approx(1.0)


def test_later_detection_earns_less_and_only_the_first_counts() -> None:
    """Row 45 sits at y = -(49 - 45 + 1) / 10 = -0.5; a second detection adds nothing."""
    expected = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0)
    assert score_file(one_file(scores_at(45)), STANDARD, 0.5).raw == pytest.approx(expected)
    assert score_file(one_file(scores_at(45, 47)), STANDARD, 0.5).raw == pytest.approx(expected)


def test_missed_window_costs_fn_weight() -> None:
    """No detection in a window: -fnWeight, doubled in the low-FN profile."""
    assert score_file(one_file(scores_at()), STANDARD, 0.5).raw == -1.0
    assert score_file(one_file(scores_at()), LOW_FN, 0.5).raw == -2.0


def test_false_positive_before_any_window_costs_full_fp_weight() -> None:
    """y = 3 when no window precedes: S = -1, times fpWeight (0.11, or 0.22 in low-FP)."""
    result = score_file(one_file(scores_at(40, 20)), STANDARD, 0.5)
    assert result.raw == pytest.approx(1.0 - 0.11)
    assert result.false_positives == 1
    assert score_file(one_file(scores_at(40, 20)), LOW_FP, 0.5).raw == pytest.approx(1.0 - 0.22)


def test_false_positive_right_after_a_window_is_cheaper() -> None:
    """Row 52 is |49 - 52| / (10 - 1) = 1/3 past the window: costs fp * S(1/3), not fp."""
    result = score_file(one_file(scores_at(40, 52)), STANDARD, 0.5)
    fp = 0.11 * (2.0 / (1.0 + math.exp(5.0 / 3.0)) - 1.0)
    assert result.raw == pytest.approx(1.0 + fp)
    assert -0.11 < fp < 0


def test_detections_in_the_probationary_period_are_ignored() -> None:
    """Rows 0..14 are never scored, whatever their score."""
    result = score_file(one_file(scores_at(3, 40)), STANDARD, 0.5)
    assert result.raw == pytest.approx(1.0)
    assert result.false_positives == 0


def test_window_inside_probation_is_not_counted() -> None:
    """A window entirely in the probationary rows neither costs nor earns."""
    result = score_file(one_file(scores_at(), windows=(Window(2, 10),)), STANDARD, 0.5)
    assert result.windows == 0
    assert result.raw == 0.0


def test_detection_means_score_at_or_above_threshold() -> None:
    """NAB counts score >= threshold as a detection."""
    assert score_file(one_file(scores_at(40, value=0.7)), STANDARD, 0.7).detected == 1
    assert score_file(one_file(scores_at(40, value=0.7)), STANDARD, 0.70001).detected == 0


def test_sweep_starts_at_nothing_detected_and_visits_every_distinct_score() -> None:
    """(1.1, null) first, then one entry per distinct score, highest first."""
    f = one_file([0.0] * 40 + [0.9] + [0.2] * 59)
    curve = sweep([f], STANDARD)
    assert [t for t, _ in curve] == [1.1, 0.9, 0.2, 0.0]
    assert curve[0][1] == -1.0
    assert curve[1][1] == pytest.approx(1.0)


def test_optimizer_prefers_the_highest_of_equally_good_thresholds() -> None:
    """Ties go to the first (highest) threshold, as NAB's stable sort does."""
    f = one_file([0.0] * 40 + [0.9, 0.8] + [0.0] * 58)  # 0.9 and 0.8 both score 1.0
    assert optimize([f], STANDARD).threshold == 0.9


def test_normalization_puts_null_at_0_and_perfect_at_100() -> None:
    """normalized = 100 * (raw - null) / (perfect - null)."""
    null = optimize([one_file(scores_at())], STANDARD)
    perfect = optimize([one_file(scores_at(40))], STANDARD)
    assert null.normalized == 0.0
    assert perfect.normalized == pytest.approx(100.0)
    assert (null.null, null.perfect) == (-1.0, 1.0)


def test_threshold_is_optimized_over_the_corpus_total() -> None:
    """One threshold for all files: the one maximizing the summed raw score."""
    a = ScoredFile("c/a.csv", scores_at(40, value=0.6), (WINDOW,))
    b = ScoredFile("c/b.csv", scores_at(40, 60, 70, 80, value=0.8), (WINDOW,))
    best = optimize([a, b], STANDARD)
    # At 0.6 both windows are hit (+2) and b's three late false positives cost little;
    # at 0.8 file a's window is missed (-1): two points worse.
    assert best.threshold == 0.6
    at_06 = score_file(a, STANDARD, 0.6).raw + score_file(b, STANDARD, 0.6).raw
    assert best.raw == pytest.approx(at_06)
    assert best.raw > optimize([a, b], STANDARD, threshold=0.8).raw


def test_module_doctests_pass() -> None:
    """The example in the module docstring stays true."""
    assert doctest.testmod(nab_module).failed == 0


# --------------------------------------------------------------------------- reference numbers

OFFICIAL = {
    "numenta": (71.36, 65.37, 75.28),
    "windowedGaussian": (41.51, 16.53, 51.37),
}


@pytest.mark.integration  # ~3 s each: reads and scores 280k rows
@pytest.mark.parametrize("detector", sorted(OFFICIAL))
def test_reference_detectors_match_official_nab_scores(detector: str) -> None:
    """Our scorer reproduces NAB's published numbers for two detectors on this subset (±0.05)."""
    root = default_dir()
    reference = root / "reference" / detector
    if not reference.is_dir():
        pytest.skip(f"NAB reference results not found at {reference} (set STANCH_NAB_DIR)")
    scored = []
    for f in load_corpus(root):
        times, scores = read_scores(reference / f.category / f"{detector}_{f.stem}.gz")
        assert times == f.timestamps
        scored.append(ScoredFile(f.name, scores, f.windows))
    got = tuple(round(r.normalized, 2) for r in score_corpus(scored))
    for ours, official in zip(got, OFFICIAL[detector], strict=True):
        assert ours == pytest.approx(official, abs=0.05), (got, OFFICIAL[detector])


def test_default_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """STANCH_NAB_DIR overrides the shared location."""
    monkeypatch.setenv("STANCH_NAB_DIR", "/somewhere/nab")
    assert default_dir() == Path("/somewhere/nab")
