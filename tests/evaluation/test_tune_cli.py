"""``stanch tune`` / ``stanch backtest`` as a user meets them: progress, output, options."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from stanch.demo.scenario import DEMO_START
from stanch.evaluation import backtest_cli
from stanch.evaluation.backtest_cli import backtest_app

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
