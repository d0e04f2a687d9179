"""``stanch backtest`` and ``stanch tune``: replay history against labeled incidents.

Both commands live on :data:`backtest_app`; the top-level CLI registers them as its own::

    app.command("backtest")(backtest_command)
    app.command("tune")(tune_command)

Bad input (a missing file, a bad row, a bad setting) ends with exit code 2 and one message
naming the file and line; never a traceback.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stanch.core.errors import RunbookError, StanchError
from stanch.core.runbook import Runbook, load_runbook
from stanch.evaluation.backtest import (
    DEFAULT_SLACK_S,
    SERIES_COLUMNS,
    SUMMARY_COLUMNS,
    BacktestResult,
    Candidate,
    backtest_file,
    render_markdown,
    series_row,
    summary_row,
)
from stanch.evaluation.history import Label, load_labels
from stanch.evaluation.tune import (
    DEFAULT_BUDGET,
    DEFAULT_FIRE_AFTER,
    TUNED,
    Proposal,
    coerce_setting,
    load_detection_config,
    make_sweep,
    propose,
)

backtest_app = typer.Typer(
    help="Replay recorded history against labeled incidents: score and tune the detectors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never split a file:line
T = TypeVar("T")


class HistoryFormat(StrEnum):
    EVENTS = "events"
    POINTS = "points"


HistoryArg = typer.Argument(
    ..., help="JSONL request events, or CSV / JSONL metric points (see stanch.evaluation.history)."
)
LabelsOption = typer.Option(..., "--labels", help="Labeled incidents, YAML or JSON.")
FormatOption = typer.Option(None, "--format", help="History format (default: guessed).")
ConfigOption = typer.Option(
    None, "--config", help="Current detector settings (detection.yaml); default: built-in."
)
SlackOption = typer.Option(
    DEFAULT_SLACK_S, "--slack", min=0.0, help="Seconds before a label's start that still count."
)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _guard(call: Callable[[], T]) -> T:
    """``call()``, with every expected failure turned into a message and exit code 2."""
    try:
        return call()
    except RunbookError as exc:
        _fail("\n".join(exc.problems))
    except StanchError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}")
    except ValueError as exc:  # a setting the detectors refuse
        _fail(str(exc))


def _need(path: Path | None, what: str) -> None:
    if path is not None and not path.is_file():
        _fail(f"{path}: no such {what} file")


def _inputs(history: Path, labels: Path, config: Path | None) -> tuple[list[Label], Candidate, str]:
    _need(history, "history")
    _need(labels, "labels")
    _need(config, "detector settings")
    loaded = _guard(lambda: load_labels(labels))
    if config is None:
        return loaded, Candidate("current"), "defaults"
    defaults, routes = _guard(lambda: load_detection_config(config))
    return loaded, Candidate("current", defaults, routes), str(config)


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["spike_threshold=4,6", "fire_after=2"]`` -> values per setting (a repeated name adds
    values); ValueError says why."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not raw.strip():
            raise ValueError(f"--grid {spec!r}: expected NAME=V1,V2,...")
        if name == "interval_s":
            raise ValueError("--grid interval_s: the window length cannot vary between candidates")
        values = []
        for text in (t.strip() for t in raw.split(",")):
            value: Any = text  # "2m" stays a string: *_s settings take durations
            with contextlib.suppress(ValueError):
                value = int(text) if text.lstrip("-").isdigit() else float(text)
            try:
                values.append(coerce_setting(name, value))
            except ValueError as exc:
                raise ValueError(f"--grid {name}={text}: {exc}") from None
        grid.setdefault(name, []).extend(values)
    return grid


def grid_candidates(base: Candidate, grid: dict[str, list[Any]]) -> list[Candidate]:
    """``base``, then one candidate per combination of ``grid`` values (set everywhere)."""
    candidates = [base]
    names = list(grid)
    if not names:
        return candidates
    for combo in itertools.product(*(grid[n] for n in names)):
        changes = dict(zip(names, combo, strict=True))
        candidates.append(
            Candidate(
                " ".join(f"{n}={v:g}" for n, v in changes.items()),
                replace(base.defaults, **changes),
                {r: replace(c, **changes) for r, c in base.routes.items()},
            )
        )
    return candidates


def results_table(results: Sequence[BacktestResult]) -> Table:
    table = Table(title="Backtest")
    for i, column in enumerate(SUMMARY_COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right")
    for result in results:
        table.add_row(*(escape(cell) for cell in summary_row(result)))
    return table


def series_table(result: BacktestResult) -> Table:
    table = Table(title=f"{escape(result.candidate.name)}: per series")
    for i, column in enumerate(SERIES_COLUMNS):
        table.add_column(column, justify="left" if i < 2 else "right")
    for row in result.series:
        if row.alerts:
            table.add_row(*(escape(cell) for cell in series_row(row)))
    return table


def proposal_table(proposal: Proposal) -> Table:
    """Signals whose threshold moves, that find labeled incidents, or that stay over budget."""
    table = Table(title=f"Proposal (budget: {proposal.budget:g} false alarms/day per route+kind)")
    for i, column in enumerate(("route", "kind", "threshold", "fire_after", "found", "FA/day")):
        table.add_column(column, justify="left" if i < 3 else "right")
    for s in proposal.signals:
        if s.current == s.proposed and not s.detected and s.budget_met:
            continue
        fa = f"{s.current_false_alarms_per_day:.2f} → {s.false_alarms_per_day:.2f}"
        table.add_row(
            escape(s.route),
            s.kind.value,
            f"{s.param} {s.current:g} → {s.proposed:g}",
            f"{s.current_fire_after} → {s.fire_after}",
            f"{s.detected}/{s.labels}" if s.labels else "—",
            fa if s.budget_met else f"[red]{fa}[/]",
        )
    return table


def _speed(result: BacktestResult, wall: float) -> str:
    wall = max(wall, 1e-9)
    what = f"{result.events / wall:,.0f} events/s" if result.events else ""
    what = what or f"{result.points / wall:,.0f} points/s"
    return (
        f"{result.days:.2f} days in {wall:.1f} s ({result.span_s / wall:,.0f}x real time, {what})"
    )


@backtest_app.command("backtest")
def backtest_command(
    history: Path = HistoryArg,
    labels: Path = LabelsOption,
    fmt: HistoryFormat | None = FormatOption,
    config: Path | None = ConfigOption,
    runbook: Path | None = typer.Option(
        None, "--runbook", help="Count the actions this runbook would have proposed."
    ),
    grid: list[str] | None = typer.Option(
        None,
        "--grid",
        metavar="NAME=V1,V2",
        help="Also try these values of a setting (repeatable: every combination is tried).",
    ),
    slack: float = SlackOption,
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a Markdown report."),
    details: bool = typer.Option(False, "--details", help="Per-series rows for every candidate."),
) -> None:
    """Score detector settings on recorded history: precision, recall, false alarms per day
    and time to detect, per candidate."""
    started = time.perf_counter()
    loaded, current, _ = _inputs(history, labels, config)
    _need(runbook, "runbook")
    book: Runbook | None = _guard(lambda: load_runbook(runbook)) if runbook else None
    try:
        candidates = grid_candidates(current, parse_grid(grid or []))
    except ValueError as exc:
        _fail(str(exc))
    results = _guard(
        lambda: backtest_file(
            history,
            candidates,
            loaded,
            fmt=fmt.value if fmt else None,
            runbook=book,
            slack_s=slack,
        )
    )
    wall = time.perf_counter() - started
    console.print(results_table(results))
    for result in results if details or len(results) == 1 else ():
        console.print(series_table(result))
        for label in result.missed:
            console.print(f"  missed: {escape(label.title)}")
        for name, count in result.actions.items():
            wasted = result.actions_on_false_alarms.get(name, 0)
            console.print(f"  runbook {escape(name)}: {count} proposed, {wasted} on false alarms")
    console.print("replayed " + _speed(results[0], wall))
    if markdown is not None:
        _guard(lambda: markdown.write_text(render_markdown(results), encoding="utf-8"))
        console.print(f"wrote {escape(str(markdown))}")


@backtest_app.command("tune")
def tune_command(
    history: Path = HistoryArg,
    labels: Path = LabelsOption,
    fmt: HistoryFormat | None = FormatOption,
    config: Path | None = ConfigOption,
    budget: float = typer.Option(
        DEFAULT_BUDGET, "--budget", min=0.0, help="False alarms per day allowed per route+kind."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the proposed settings here."),
    grid: list[str] | None = typer.Option(
        None,
        "--grid",
        metavar="NAME=V1,V2",
        help=f"Threshold values to try instead of the default grid ({', '.join(TUNED.values())}).",
    ),
    fire_after: str = typer.Option(
        ",".join(map(str, DEFAULT_FIRE_AFTER)),
        "--fire-after",
        metavar="N,N",
        help="fire_after values to try.",
    ),
    slack: float = SlackOption,
) -> None:
    """Propose thresholds per route and signal that keep false alarms within the budget, and
    print them as a diff of the detector settings."""
    started = time.perf_counter()
    loaded, current, current_name = _inputs(history, labels, config)
    try:
        fires = [int(coerce_setting("fire_after", int(v))) for v in fire_after.split(",")]
        sweep = make_sweep(current, grid=parse_grid(grid or []), fire_after=fires)
    except (ValueError, StanchError) as exc:
        _fail(f"--fire-after {fire_after}: {exc}" if isinstance(exc, ValueError) else str(exc))
    results = _guard(
        lambda: backtest_file(
            history, sweep.candidates, loaded, fmt=fmt.value if fmt else None, slack_s=slack
        )
    )
    proposal = propose(sweep, results, budget=budget)
    wall = time.perf_counter() - started
    console.print(proposal_table(proposal))
    console.print(results_table([proposal.baseline, proposal.result]))
    after_name = str(out) if out is not None else "proposed"
    diff = proposal.diff(before_name=current_name, after_name=after_name)
    if diff:
        sys.stdout.write(diff)
    else:
        console.print("No change proposed: the current settings are already the choice.")
    console.print(f"{len(sweep.candidates)} candidates over " + _speed(results[0], wall))
    if out is not None:
        _guard(lambda: out.write_text(proposal.yaml(), encoding="utf-8"))
        console.print(f"wrote {escape(str(out))}")
