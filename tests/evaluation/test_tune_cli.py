"""``stanch tune`` / ``stanch backtest`` as a user meets them: progress, output, options."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from stanch.demo.scenario import DEMO_START
from stanch.evaluation import backtest_cli
from stanch.evaluation.backtest import backtest_file
from stanch.evaluation.backtest_cli import OVER_BUDGET, backtest_app, proposal_table
from stanch.evaluation.backtest_results import Candidate
from stanch.evaluation.detection_file import load_detection_config
from stanch.evaluation.history import infer_interval
from stanch.evaluation.sweep import TUNED, make_sweep
from stanch.evaluation.tune import Proposal, propose

S = DEMO_START
ROUTES = ("GET /search", "POST /checkout")


def write_points(path: Path, seconds: int, *, interval: float = 1.0, column: bool = True) -> Path:
    """Steady traffic on two routes and the service, one row per series per window (with or
    without an ``interval`` column)."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(int(seconds / interval)):
            t = S + i * interval
            requests = round((4 + 2 * math.sin(i / 7.0)) * interval)
            for route in (*ROUTES, "*"):
                row: dict[str, object] = {
                    "ts": t,
                    "service": "shop",
                    "route": route,
                    "requests": requests * (2 if route == "*" else 1),
                    "errors": 0,
                    "p50": 0.02,
                    "p95": 0.05,
                    "p99": 0.08,
                }
                if column:
                    row["interval"] = interval
                fh.write(json.dumps(row) + "\n")
    return path


def write_labels(path: Path, *, service: str = "shop", route: str = "GET /search") -> Path:
    path.write_text(
        f'- service: {service}\n  route: "{route}"\n  start: {S + 300}\n  end: {S + 360}\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_points(tmp_path_factory.mktemp("h") / "points.jsonl", 600)


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal would be (the CLI runner's is not one)."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, highlight=False, soft_wrap=True)
    monkeypatch.setattr(backtest_cli, "err", console)
    return out


GRID = ["--grid", "spike_threshold=4,6", "--fire-after", "1,3"]


def test_tune_shows_progress_on_a_terminal(history: Path, tmp_path: Path, tty: io.StringIO) -> None:
    labels = write_labels(tmp_path / "l.yaml")
    args = ["tune", str(history), "--labels", str(labels), *GRID]
    result = CliRunner().invoke(backtest_app, args)
    assert result.exit_code == 0, result.output
    assert "replaying" in tty.getvalue()
    assert "candidate(s)" in tty.getvalue()


@pytest.mark.parametrize("command", ["tune", "backtest"])
def test_quiet_draws_no_progress_bar(
    command: str, history: Path, tmp_path: Path, tty: io.StringIO
) -> None:
    labels = write_labels(tmp_path / "l.yaml")
    args = [command, str(history), "--labels", str(labels), "--quiet"]
    args += GRID if command == "tune" else []
    result = CliRunner().invoke(backtest_app, args)
    assert result.exit_code == 0, result.output
    assert "replaying" not in tty.getvalue()


def test_no_progress_bar_when_stderr_is_not_a_terminal(history: Path, tmp_path: Path) -> None:
    labels = write_labels(tmp_path / "l.yaml")
    result = CliRunner().invoke(backtest_app, ["backtest", str(history), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert "replaying" not in result.output


# --------------------------------------------------------------------------- the output


LONG_ROUTE = "GET /api/v2/catalogue/products/{product_id}/recommendations"


@pytest.fixture(scope="module")
def over_budget(history: Path) -> Proposal:
    """A proposal whose first signal, on a long route, stays over budget."""
    sweep = make_sweep(Candidate("current"), grid=dict.fromkeys(TUNED.values(), (6.0,)))
    proposal = propose(sweep, backtest_file(history, sweep.candidates, []))
    first = dataclasses.replace(
        proposal.signals[0], route=LONG_ROUTE, budget_met=False, false_alarms_per_day=3.0
    )
    return dataclasses.replace(proposal, signals=(first, *proposal.signals[1:]))


def test_tables_are_printed_whole_into_a_pipe(
    over_budget: Proposal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal there is no window to fit: a long route and the kind are printed
    whole, not squeezed into 80 columns as "traffic_spi…"."""
    out = io.StringIO()
    monkeypatch.setattr(backtest_cli, "console", Console(file=out, width=80, highlight=False))
    backtest_cli._print_table(proposal_table(over_budget))
    assert LONG_ROUTE in out.getvalue()
    assert over_budget.signals[0].kind.value in out.getvalue()
    assert "…" not in out.getvalue()
    assert max(len(line) for line in out.getvalue().splitlines()) > 80
    assert backtest_cli.console.width == 80  # widened for the table only


def test_a_row_over_budget_says_so_in_words(over_budget: Proposal) -> None:
    """Red is lost in a pipe: the FA/day cell of a signal over budget says "over budget"."""
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(proposal_table(over_budget))
    row = next(line for line in out.getvalue().splitlines() if LONG_ROUTE in line)
    assert row.rstrip("│ ").endswith(f"→ 3.00 {OVER_BUDGET}")
    assert OVER_BUDGET not in out.getvalue().replace(row, "")


PINNED = """\
detection:
  defaults:
    fire_after: 3
  routes:
    "GET /search":        # pinned: stays 6 whatever the defaults become
      spike_threshold: 6.0
"""


def test_a_users_pin_equal_to_the_default_is_kept(history: Path, tmp_path: Path) -> None:
    """A route entry equal to the defaults is still the user's: tune keeps it (it pins the
    route against a later change of defaults) instead of proposing to delete it."""
    labels = write_labels(tmp_path / "l.yaml")
    config = tmp_path / "d.yaml"
    config.write_text(PINNED, encoding="utf-8")
    out = tmp_path / "out.yaml"
    args = ["tune", str(history), "--labels", str(labels), "--config", str(config)]
    args += ["--out", str(out), *GRID, "--quiet"]
    result = CliRunner().invoke(backtest_app, args)
    assert result.exit_code == 0, result.output
    assert '-    "GET /search"' not in result.output
    assert "# pinned: stays 6" in out.read_text(encoding="utf-8")
    assert load_detection_config(out)[1]["GET /search"].spike_threshold == 6.0


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--grid", "spike_threshold"], "--grid 'spike_threshold': no '='; the accepted form is"),
        (["--grid", "spike_threshold=4;6"], "--grid spike_threshold=4;6: expected a number"),
        (["--grid", "spike_threshold=4,,6"], "an empty value; the accepted form is NAME=V1,V2"),
        (["--grid", "spike=4"], "--grid spike: no such setting; tune varies spike_threshold"),
        (["--grid", "fire_after=2"], "its own option, --fire-after 1,3"),
        (["--fire-after", "1,x"], "--fire-after 1,x: 'x' is not a whole number of at least 1"),
        (["--fire-after", "0"], "the accepted form is N,N,..."),
    ],
)
def test_a_bad_grid_names_what_is_wrong_and_the_accepted_form(
    history: Path, tmp_path: Path, option: list[str], expected: str
) -> None:
    labels = write_labels(tmp_path / "l.yaml")
    result = CliRunner().invoke(
        backtest_app, ["tune", str(history), "--labels", str(labels), *option]
    )
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())
    assert "--fire-after 1,2,3,5" not in result.output  # a grid error is not blamed on it


# --------------------------------------------------------------------------- point interval


def test_the_interval_of_points_is_inferred_from_their_spacing(tmp_path: Path) -> None:
    """Rows without an interval: the median spacing of a series' rows; rows that say their
    interval are taken at their word (None)."""
    bare = write_points(tmp_path / "bare.jsonl", 3600, interval=60.0, column=False)
    told = write_points(tmp_path / "told.jsonl", 3600, interval=60.0)
    assert infer_interval(bare) == 60.0
    assert infer_interval(told) is None
    assert infer_interval(write_points(tmp_path / "one.jsonl", 1, column=False)) is None


def test_points_60_s_apart_are_replayed_as_60_s_windows(tmp_path: Path) -> None:
    """Without --config, a file of 60 s points is read as 60 s windows, and the user is told
    so; before, each row was read as one second of 60 times the traffic."""
    history = write_points(tmp_path / "p.jsonl", 6 * 3600, interval=60.0, column=False)
    labels = write_labels(tmp_path / "l.yaml")
    result = CliRunner().invoke(backtest_app, ["backtest", str(history), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"{history}: the rows carry no interval" in said
    assert "read as 60 s windows (interval_s=60)" in said
    assert "replayed 0.25 days" in said  # 360 windows of 60 s, not of 1 s


def test_an_interval_set_in_the_config_is_kept_and_a_mismatch_warned(tmp_path: Path) -> None:
    history = write_points(tmp_path / "p.jsonl", 3600, interval=60.0, column=False)
    labels = write_labels(tmp_path / "l.yaml")
    config = tmp_path / "d.yaml"
    config.write_text("detection:\n  defaults:\n    interval_s: 1\n", encoding="utf-8")
    args = ["backtest", str(history), "--labels", str(labels), "--config", str(config)]
    result = CliRunner().invoke(backtest_app, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"but {config} sets interval_s=1: each row is read as 1 s of traffic" in said
    config.write_text("detection:\n  defaults:\n    interval_s: 60\n", encoding="utf-8")
    result = CliRunner().invoke(backtest_app, args)
    assert result.exit_code == 0, result.output
    assert "interval" not in result.output


# --------------------------------------------------------------------------- labels


BAD_LABELS = f"""\
- service: shop
  route: "GET /search"
  start: {S + 300}
  end: {S + 360}
- service: shpo
  start: {S + 300}
  end: {S + 360}
- service: shop
  route: "GET /serch"
  name: typo
  start: {S + 300}
  end: {S + 360}
"""


def test_labels_naming_no_series_are_warned_about_by_file_and_line(
    history: Path, tmp_path: Path
) -> None:
    """A label whose service, or route, the history does not have can never be detected:
    each is named with its file and line and what the history has instead."""
    labels = tmp_path / "incidents.yaml"
    labels.write_text(BAD_LABELS, encoding="utf-8")
    result = CliRunner().invoke(backtest_app, ["backtest", str(history), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"{labels}:5: label 'shpo * any @" in said
    assert "names service 'shpo', which has no series in the history (it has 'shop')" in said
    assert f"{labels}:8: label 'typo' names route 'GET /serch', which matches no series" in said
    assert "(it has 'GET /search', 'POST /checkout')" in said
    assert f"{labels}:1:" not in said  # the good label is not warned about
