"""Tuning: the detector settings file, the sweep, and proposals that meet a false-alarm budget."""

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stanch.core.alerts import AlertKind
from stanch.core.detection_config import DetectionConfig
from stanch.core.errors import ValidationError
from stanch.core.events import RequestEvent
from stanch.core.windows import Point
from stanch.demo.scenario import DEMO_START
from stanch.demo.synthetic import synthetic_events
from stanch.demo.traffic import Flood, TrafficProfile
from stanch.evaluation.backtest import backtest_points
from stanch.evaluation.backtest_cli import backtest_app
from stanch.evaluation.backtest_results import BacktestResult, Candidate
from stanch.evaluation.detection_file import (
    load_detection_config,
    parse_detection_config,
    render_detection_config,
)
from stanch.evaluation.labels import Label
from stanch.evaluation.recorders import PointRecorder, StorePointRecorder
from stanch.evaluation.replay_batches import EventWindows
from stanch.evaluation.sweep import Sweep, make_sweep
from stanch.evaluation.tune import Proposal, propose, required_days
from stanch.store import Store

S = DEMO_START
FLOOD = Flood("scraper-7", "GET", "/search?q=lamp", S + 900, S + 1140, multiplier=20.0)
BURST = (S + 1380.0, S + 1500.0)
LABELS = [
    Label("shop", FLOOD.start, FLOOD.end, route="GET /search"),
    Label("shop", *BURST, route="POST /checkout", kind=AlertKind.ERROR_BURST),
]
TWITCHY = DetectionConfig(spike_threshold=2.0, latency_threshold=2.0, fire_after=1)
# A small grid keeps the sweep to four candidates: two threshold columns by two fire_after.
GRID = {
    "spike_threshold": (2.0, 6.0),
    "latency_threshold": (2.0, 6.0),
    "drop_threshold": (4.0,),
    "error_threshold": (7.0,),
    "burn_threshold": (14.4,),
}
GRID_ARGS = [
    arg for name, vs in GRID.items() for arg in ("--grid", f"{name}={','.join(map(str, vs))}")
]


def incident_events() -> Iterator[RequestEvent]:
    """30 minutes of the shop: a search flood at 15 min and failing checkouts at 23 min."""
    for batch in synthetic_events(S, 1800.0, TrafficProfile(), seed=3, floods=[FLOOD]):
        for event in batch:
            if event.route == "/checkout" and BURST[0] <= event.ts < BURST[1]:
                event = dataclasses.replace(event, status=503)
            yield event


@pytest.fixture(scope="module")
def points() -> list[Point]:
    return [p for batch in EventWindows().batches(incident_events()) for p in batch]


@pytest.fixture(scope="module")
def proposal(points: list[Point]) -> Proposal:
    sweep = make_sweep(Candidate("twitchy", TWITCHY), grid=GRID, fire_after=(1, 3))
    return propose(sweep, backtest_points(points, sweep.candidates, LABELS), budget=0.5)


FULL = """\
detection:
  defaults:
    fire_after: 2
    warmup_s: 2m
    spike_threshold: 5
  routes:
    "GET /search":
      spike_threshold: 4.0
    "GET /products*":
      latency_threshold: 8.0
    "*":
      fire_after: 4
other_section: {kept: out}
"""


# --------------------------------------------------------------------------- the file


def test_detection_config_reads_defaults_routes_and_durations() -> None:
    """Defaults override built-ins; a route entry overrides the defaults; durations parse."""
    defaults, routes = parse_detection_config(FULL)
    assert defaults == DetectionConfig(fire_after=2, warmup_s=120.0, spike_threshold=5.0)
    assert list(routes) == ["GET /search", "GET /products*", "*"]
    assert routes["GET /search"] == dataclasses.replace(defaults, spike_threshold=4.0)
    assert routes["*"].fire_after == 4
    assert routes["*"].spike_threshold == 5.0


def test_rendered_config_reads_back_unchanged() -> None:
    """The normal form is a fixed point: render, parse, render gives the same text."""
    defaults, routes = parse_detection_config(FULL)
    text = render_detection_config(defaults, routes)
    assert parse_detection_config(text) == (defaults, routes)
    assert render_detection_config(*parse_detection_config(text)) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "detection:\n  defaults:\n    spike: 3\n",
            ":3: detection.defaults.spike: unknown setting",
        ),
        ("detection:\n  routes:\n    '*':\n      interval_s: 5\n", ":4: detection.routes.*."),
        ("detection:\n  defaults:\n    fire_after: 1.5\n", ":3: detection.defaults.fire_after:"),
        ("detection:\n  defaults:\n    fire_after: true\n", ":3: detection.defaults.fire_after:"),
        ("detection:\n  defaults:\n    spike_threshold: -1\n", ":3: detection.defaults.spike_"),
        ("detection:\n  defaults:\n    warmup_s: soon\n", ":3: detection.defaults.warmup_s:"),
        ("detection:\n  defaults:\n    slo_objective: 1\n", ":3: detection.defaults.slo_obj"),
        ("detection:\n  default: {}\n", ":2: detection.default: unknown key"),
        ("detection:\n  routes: [1]\n", ":2: detection.routes: expected a mapping"),
        ("other: 1\n", ":1: detection: expected a mapping"),
        ("detection: [\n", ":2: (yaml):"),
        (
            "detection:\n  defaults:\n    burn_short_s: 2h\n    burn_long_s: 1h\n",
            ":2: detection.defaults: burn_short_s",
        ),
        (
            "detection:\n  routes:\n    'GET /a':\n      burn_short_s: 2h\n",
            ":3: detection.routes.GET /a: burn_short_s",
        ),
    ],
)
def test_bad_detection_config_names_line_and_field(text: str, expected: str) -> None:
    """Every problem in the settings file names its line and the setting's path."""
    with pytest.raises(ValidationError) as info:
        parse_detection_config(text, "d.yaml")
    assert str(info.value).startswith(f"d.yaml{expected}")


def test_missing_config_file_is_a_validation_error(tmp_path: Path) -> None:
    """An unreadable settings file is reported at line 1."""
    with pytest.raises(ValidationError, match=r"d\.yaml:1: \(file\): cannot read"):
        load_detection_config(tmp_path / "d.yaml")


# --------------------------------------------------------------------------- the sweep


def test_sweep_tries_the_values_in_use_and_refuses_unknown_settings() -> None:
    """Current values join the grid; candidate i sets the i-th value of every threshold."""
    current = Candidate("c", DetectionConfig(spike_threshold=4.5, fire_after=4))
    sweep = make_sweep(current, grid={"spike_threshold": (3.0, 6.0)}, fire_after=(1, 2))
    assert sweep.values["spike_threshold"] == (3.0, 4.5, 6.0)
    assert sweep.fire_after == (1, 2, 4)
    assert len(sweep.candidates) == sweep.size * 3
    second = sweep.candidates[1].defaults
    assert (second.spike_threshold, second.fire_after) == (4.5, 1)
    assert second.drop_threshold == sweep.values["drop_threshold"][1]
    with pytest.raises(ValidationError, match="cannot tune warmup_s"):
        make_sweep(current, grid={"warmup_s": (1.0,)})


def test_proposal_meets_the_budget_and_keeps_recall(proposal: Proposal) -> None:
    """From settings that page all day, tuning finds ones with no false alarm and full recall."""
    assert proposal.baseline.false_positives > 10
    assert proposal.result.false_positives == 0
    assert proposal.result.false_alarms_per_day <= proposal.budget
    assert proposal.result.recall == 1.0
    assert proposal.result.max_ttd is not None
    assert proposal.result.max_ttd <= 10.0
    assert all(s.budget_met for s in proposal.signals)


def test_proposal_diff_names_the_changed_settings(proposal: Proposal) -> None:
    """The diff is against the current settings and shows the thresholds that moved."""
    diff = proposal.diff(before_name="detection.yaml", after_name="proposed.yaml")
    assert diff.startswith("--- detection.yaml\n+++ proposed.yaml\n")
    changed = {s.param for s in proposal.signals if s.current != s.proposed}
    assert changed
    for param in changed:
        assert f"+    {param}:" in diff or f"+      {param}:" in diff
    assert parse_detection_config(proposal.yaml()) == (
        proposal.proposed.defaults,
        dict(proposal.proposed.routes),
    )


def test_proposal_scores_match_a_real_replay(points: list[Point], proposal: Proposal) -> None:
    """Recombining the sweep's per-series results is exact: replaying the proposal agrees."""
    current, proposed = backtest_points(points, [proposal.current, proposal.proposed], LABELS)
    assert current.fires == proposal.baseline.fires
    assert proposed.fires == proposal.result.fires
    assert proposed.series == proposal.result.series


def test_signals_without_evidence_keep_their_settings(points: list[Point]) -> None:
    """With quiet settings and no labels on a route, nothing about that route changes."""
    sweep = make_sweep(Candidate("default"), grid=GRID, fire_after=(1, 3))
    result = propose(sweep, backtest_points(points, sweep.candidates, LABELS))
    login = [s for s in result.signals if s.route == "POST /login"]
    assert login
    assert not any(s.changed for s in login)
    assert all(s.reason.startswith("no labeled incident; kept") for s in login)


STRICT = DetectionConfig(spike_threshold=13.0, latency_threshold=13.0, fire_after=5)
STRICT_GRID = {**GRID, "spike_threshold": (4.0, 13.0), "latency_threshold": (4.0, 13.0)}


@pytest.fixture(scope="module")
def strict_replay(points: list[Point]) -> tuple[Sweep, list[BacktestResult]]:
    """Settings too strict for the flood, replayed with a sweep that could loosen them."""
    sweep = make_sweep(Candidate("strict", STRICT), grid=STRICT_GRID, fire_after=(1, 5))
    before_burst = [p for p in points if p.t < BURST[0]]  # the flood is all this needs
    return sweep, backtest_points(before_burst, sweep.candidates, LABELS)


def test_short_history_never_lowers_a_setting(
    strict_replay: tuple[Sweep, list[BacktestResult]],
) -> None:
    """23 minutes cannot show 0.5 false alarms/day is met (that takes 6 days): the evidence
    for lower thresholds is reported, and the settings in use are kept."""
    sweep, results = strict_replay
    proposal = propose(sweep, results, budget=0.5)
    assert required_days(0.5) == 6.0
    assert (proposal.can_loosen, proposal.required_days) == (False, 6.0)
    assert proposal.proposed == dataclasses.replace(proposal.current, name="proposed")
    search = {s.kind: s for s in proposal.signals if s.route == "GET /search"}
    spike = search[AlertKind.TRAFFIC_SPIKE]
    assert (spike.current, spike.proposed, spike.fire_after) == (13.0, 13.0, 5)
    assert spike.held
    assert spike.reason.startswith("kept: 0.02 days of history cannot show that 0.5 false")
    assert "would lower spike_threshold to 4 and fire_after to 1" in spike.reason
    assert all(
        s.proposed >= s.current and s.fire_after >= s.current_fire_after for s in proposal.signals
    )


def test_a_stray_row_years_ahead_does_not_make_history_long_enough(
    points: list[Point],
) -> None:
    """23 minutes of points and one row dated 2029 are 23 minutes of history, not years:
    the replayed days count covered time only, so nothing is loosened."""
    sweep = make_sweep(Candidate("strict", STRICT), grid=STRICT_GRID, fire_after=(1, 5))
    before_burst = [p for p in points if p.t < BURST[0]]
    stray = dataclasses.replace(before_burst[-1], t=1_861_920_000.0)  # 2029-01-01
    results = backtest_points([*before_burst, stray], sweep.candidates, LABELS)
    assert results[0].days < 0.02
    assert results[0].gaps == 1
    proposal = propose(sweep, results, budget=0.5)
    assert not proposal.can_loosen
    assert all(
        s.proposed >= s.current and s.fire_after >= s.current_fire_after for s in proposal.signals
    )


def test_long_enough_history_may_lower_settings(
    strict_replay: tuple[Sweep, list[BacktestResult]],
) -> None:
    """The same evidence over (a pretended) week may lower them: the flood is found sooner."""
    sweep, results = strict_replay
    week = [dataclasses.replace(r, span_s=7 * 86_400.0) for r in results]
    proposal = propose(sweep, week, budget=0.5)
    assert proposal.can_loosen
    assert not proposal.held
    spike = next(
        s for s in proposal.signals if (s.route, s.kind) == ("GET /search", AlertKind.TRAFFIC_SPIKE)
    )
    assert (spike.proposed, spike.fire_after) == (4.0, 1)
    assert required_days(10.0) == 1.0  # never under a day: the daily cycle
    assert required_days(0.0) == math.inf


@pytest.mark.integration
def test_default_grid_tunes_default_settings_within_budget(points: list[Point]) -> None:
    """The full default grid (28 candidates) keeps recall and the budget from the defaults."""
    sweep = make_sweep(Candidate("default"))
    result = propose(sweep, backtest_points(points, sweep.candidates, LABELS))
    assert result.result.recall == 1.0
    assert result.result.false_positives == 0


# --------------------------------------------------------------------------- CLI


def test_cli_tune_prints_a_diff_and_writes_the_proposal(
    points: list[Point], tmp_path: Path, proposal: Proposal
) -> None:
    """``stanch tune`` prints the diff against --config and writes --out, which loads back."""
    history = tmp_path / "points.jsonl"
    with PointRecorder(history) as recorder:
        recorder.write(points)
    labels = tmp_path / "labels.yaml"
    labels.write_text(
        f"- {{service: shop, route: GET /search, start: {FLOOD.start}, end: {FLOOD.end}}}\n"
        f"- {{service: shop, route: POST /checkout, kind: error_burst, "
        f"start: {BURST[0]}, end: {BURST[1]}}}\n",
        encoding="utf-8",
    )
    config = tmp_path / "detection.yaml"
    written = "# ours: keep this comment\ndetection:\n  defaults:\n    fire_after: 1  # eager\n"
    written += "    spike_threshold: 2\n    latency_threshold: 2.0\nnotify: {channel: ops}\n"
    config.write_text(written, encoding="utf-8")
    assert load_detection_config(config) == (TWITCHY, {})
    out = tmp_path / "proposed.yaml"
    args = ["tune", str(history), "--labels", str(labels), "--config", str(config)]
    result = CliRunner().invoke(
        backtest_app, [*args, *GRID_ARGS, "--fire-after", "1,3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"--- {config}" in result.output
    assert f"+++ {out}" in result.output
    assert "spike_threshold" in result.output
    assert load_detection_config(out) == (
        proposal.proposed.defaults,
        dict(proposal.proposed.routes),
    )
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# ours: keep this comment\n")
    assert text.endswith("notify: {channel: ops}\n")
    assert "warning: only 0.02 days of history" in " ".join(result.output.split())
    if shutil.which("patch"):  # the printed diff applies to the user's file and gives --out
        diff = result.output[result.output.index(f"--- {config}") :]
        diff = diff[: diff.rindex("\n", 0, diff.index(" candidates over ")) + 1]
        (tmp_path / "p.diff").write_text(diff, encoding="utf-8")
        run = subprocess.run(
            ["patch", str(config), str(tmp_path / "p.diff")], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert config.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--config", "CONFIG"], "detection.yaml:2: detection.defaults: expected a mapping"),
        (["--grid", "warmup_s=1"], "--grid warmup_s: a setting tune does not vary"),
        (["--fire-after", "1,x"], "--fire-after 1,x:"),
        (["--budget", "-1"], "greater than or equal to 0"),
    ],
)
def test_cli_tune_reports_bad_input_with_exit_2(
    tmp_path: Path, extra: list[str], expected: str
) -> None:
    """Bad settings files and options end with exit 2 and a message, never a traceback."""
    history = tmp_path / "e.jsonl"
    history.write_text("", encoding="utf-8")
    labels = tmp_path / "labels.yaml"
    labels.write_text("[]\n", encoding="utf-8")
    config = tmp_path / "detection.yaml"
    config.write_text("detection:\n  defaults: [1]\n", encoding="utf-8")
    extra = [str(config) if arg == "CONFIG" else arg for arg in extra]
    result = CliRunner().invoke(
        backtest_app, ["tune", str(history), "--labels", str(labels), *extra]
    )
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())


def test_cli_tune_reads_history_from_the_store(points: list[Point], tmp_path: Path) -> None:
    """``stanch tune --db`` tunes on the points the engine recorded, like on a file."""
    url = f"sqlite:///{tmp_path / 'stanch.db'}"
    with Store.open(url) as store, StorePointRecorder(store) as recorder:
        recorder.write([p for p in points if p.t < BURST[0]])
    labels = tmp_path / "labels.yaml"
    labels.write_text(
        f"- {{service: shop, route: GET /search, start: {FLOOD.start}, end: {FLOOD.end}}}\n",
        encoding="utf-8",
    )
    config = tmp_path / "detection.yaml"
    config.write_text(render_detection_config(TWITCHY, {}), encoding="utf-8")
    args = ["tune", "--db", url, "--labels", str(labels), "--config", str(config)]
    result = CliRunner().invoke(backtest_app, [*args, *GRID_ARGS, "--fire-after", "1,3"])
    assert result.exit_code == 0, result.output
    assert f"--- {config}" in result.output
    assert "+    GET /search:\n+      spike_threshold: 6.0\n" in result.output
    assert "only 0.02 days of history" in " ".join(result.output.split())


def test_the_users_file_is_diffed_as_written_crlf_and_all(tmp_path: Path) -> None:
    """A Windows-edited settings file keeps its CRLF in the text the diff is made against
    (else `patch` refuses every hunk: "different line endings")."""
    from stanch.evaluation.backtest_cli import _inputs

    labels = tmp_path / "labels.yaml"
    labels.write_text("[]\n", encoding="utf-8")
    config = tmp_path / "detection.yaml"
    config.write_bytes(b"detection:\r\n  defaults:\r\n    fire_after: 2\r\n")
    inputs = _inputs(labels, config)
    assert inputs.config_text == "detection:\r\n  defaults:\r\n    fire_after: 2\r\n"
