"""``stanch backtest`` and ``stanch tune``: replay history against labeled incidents.

Both commands live on :data:`backtest_app`; the top-level CLI registers them as its own::

    app.command("backtest")(backtest_command)
    app.command("tune")(tune_command)

History is a file (events or points) or, with ``--db``, a time range of the points the engine
recorded in the store (``StorePointRecorder``).

Bad input (a missing file, a bad row, a bad setting, history without a row) ends with exit code
2 and one message naming the file and line; never a traceback. What the scores cannot show is
said after them, as warnings on stderr: rows that came too late for their window (with how to
fix an unsorted file), labels outside the replayed history, and history too short for ``tune``
to lower any threshold.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from stanch.core.durations import parse_duration
from stanch.core.errors import RunbookError, StanchError
from stanch.core.runbook import Runbook, load_runbook
from stanch.core.windows import Point
from stanch.evaluation.backtest import (
    DEFAULT_SLACK_S,
    backtest_file,
    backtest_points,
    require_history,
)
from stanch.evaluation.backtest_results import (
    SERIES_COLUMNS,
    SUMMARY_COLUMNS,
    BacktestResult,
    Candidate,
    coverage,
    render_markdown,
    replay_warnings,
    series_row,
    summary_row,
)
from stanch.evaluation.config_edit import edited_config_text
from stanch.evaluation.detection_file import (
    coerce_setting,
    config_diff,
    explicit_defaults,
    load_detection_config,
    setting_names,
)
from stanch.evaluation.history import format_utc, infer_interval, parse_time, sniff_format
from stanch.evaluation.labels import Label, load_labels
from stanch.evaluation.replay_batches import DEFAULT_MAX_GAP_S, DEFAULT_MAX_SKEW_S
from stanch.evaluation.sweep import DEFAULT_FIRE_AFTER, TUNED, make_sweep
from stanch.evaluation.tune import DEFAULT_BUDGET, Proposal, propose
from stanch.store import Store

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
    None,
    help="JSONL request events, or CSV / JSONL metric points (see stanch.evaluation.history); "
    "or none, with --db.",
    show_default=False,
)
LabelsOption = typer.Option(..., "--labels", help="Labeled incidents, YAML or JSON.")
FormatOption = typer.Option(None, "--format", help="History format (default: guessed).")
ConfigOption = typer.Option(
    None, "--config", help="Current detector settings (detection.yaml); default: built-in."
)
SlackOption = typer.Option(
    DEFAULT_SLACK_S, "--slack", min=0.0, help="Seconds before a label's start that still count."
)
DbOption = typer.Option(
    None,
    "--db",
    help="Replay the points recorded in this store (database URL or SQLite path) instead of a "
    "file.",
)
SinceOption = typer.Option(
    None,
    "--since",
    help="With --db: first window to replay: ISO-8601, epoch seconds, or a duration before "
    "now ('72h').",
)
UntilOption = typer.Option(
    None, "--until", help="With --db: replay windows starting before this (same forms as --since)."
)
MaxSkewOption = typer.Option(
    DEFAULT_MAX_SKEW_S,
    "--max-skew",
    min=0.0,
    help="Seconds a row may come after a newer one and still count in its own window.",
)


MaxGapOption = typer.Option(
    DEFAULT_MAX_GAP_S,
    "--max-gap",
    min=0.0,
    help="Seconds without a single row (no series at all) taken as missing history, not "
    "silence: a recorder that was off or a lost file would otherwise replay as an outage of "
    "every route, and page. Such gaps are skipped and left out of the days replayed; lower "
    "this to replay a longer total outage as one.",
)
QuietOption = typer.Option(
    False,
    "--quiet",
    "-q",
    help="No progress bar (none is drawn either when stderr is not a terminal).",
)


@dataclass(frozen=True, slots=True)
class History:
    """Where the replayed rows come from: a file, or a time range of the store's points."""

    path: Path | None = None
    db: str | None = None
    since: float | None = None
    until: float | None = None

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else f"--db {self.db}"

    @property
    def sort_hint(self) -> str:
        if self.path is None:
            return ""
        name = shlex.quote(str(self.path))
        if name.lower().endswith(".csv"):
            return f"(head -n 1 {name} && tail -n +2 {name} | sort -t, -k1,1g) > sorted.csv"
        return f"jq -c -s 'sort_by(.ts)[]' {name} > sorted.jsonl"


@dataclass(frozen=True, slots=True)
class Inputs:
    labels: list[Label]
    current: Candidate
    config_name: str
    config_text: str | None  # the settings file as written, for an applicable diff
    #: Whether the settings file chose interval_s (else a points file's spacing may).
    sets_interval: bool = False


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _warn(message: str) -> None:
    err.print(f"[bold yellow]warning:[/] {escape(message)}")


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
    except SQLAlchemyError as exc:  # an unreachable or foreign database
        _fail(f"database: {str(exc.orig if hasattr(exc, 'orig') else exc).strip()[:300]}")


def _need(path: Path | None, what: str) -> None:
    if path is not None and not path.is_file():
        _fail(f"{path}: no such {what} file")


def _history(path: Path | None, db: str | None, since: str | None, until: str | None) -> History:
    """The history the options name: exactly one of a file and --db."""
    if (path is None) == (db is None):
        _fail("give a history file or --db URL (one of them)")
    if path is not None:
        if since is not None or until is not None:
            _fail("--since and --until select points of --db; a file is replayed whole")
        _need(path, "history")
        return History(path=path)
    assert db is not None
    url = db if "://" in db else f"sqlite:///{db}"
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        sqlite_path = Path(url.removeprefix("sqlite:///"))
        if not sqlite_path.is_file():
            _fail(f"{sqlite_path}: no Stanch database there (--db)")
    now = time.time()  # the CLI's own clock: only for --since/--until given as durations
    bounds = [_when(option, text, now) for option, text in (("--since", since), ("--until", until))]
    if bounds[0] is not None and bounds[1] is not None and bounds[1] <= bounds[0]:
        _fail(f"--until {until} is not after --since {since}")
    return History(db=url, since=bounds[0], until=bounds[1])


_LATEST = 32_503_680_000.0  # 3000-01-01T00:00:00Z


def _when(option: str, text: str | None, now: float) -> float | None:
    if text is None:
        return None
    try:
        when = parse_time(text)
    except ValueError:
        try:
            when = now - parse_duration(text)
        except ValueError:
            _fail(
                f"{option} {text}: expected an ISO-8601 time, epoch seconds or a duration ('72h')"
            )
    if not 0.0 <= when <= _LATEST:  # the store's timestamps are epoch seconds of this era
        hint = " (looks like milliseconds since the epoch; Stanch expects seconds)"
        _fail(f"{option} {text}: outside 1970 to 3000{hint if when > 1e11 else ''}")
    return when


def _inputs(labels: Path, config: Path | None) -> Inputs:
    _need(labels, "labels")
    _need(config, "detector settings")
    loaded = _guard(lambda: load_labels(labels))
    if config is None:
        return Inputs(loaded, Candidate("current"), "defaults", None)
    defaults, routes = _guard(lambda: load_detection_config(config))
    text = _guard(lambda: config.read_bytes().decode("utf-8"))  # as written: BOM, CRLF and all
    sets_interval = "interval_s" in explicit_defaults(text.removeprefix("\ufeff"))
    current = Candidate("current", defaults, routes)
    return Inputs(loaded, current, str(config), text, sets_interval)


def _check_gap(max_gap: float, max_skew: float) -> None:
    """A gap is told from rows merely out of order only when it is longer than the skew."""
    if not max_gap > max_skew:
        _fail(
            f"--max-gap {max_gap:g} must be more than --max-skew {max_skew:g}: rows that late "
            "are out of order, not after missing history"
        )


def _point_interval(history: History, inputs: Inputs, fmt: HistoryFormat | None) -> Inputs:
    """``inputs`` with the window length of a points file whose rows do not say it: the
    spacing of its rows, unless the settings chose ``interval_s`` (then a mismatch is warned
    about). A file recorded at 60 s read as 1 s windows would show every route at 60 times its
    traffic, and nothing else would say so."""
    path = history.path
    if path is None or (fmt.value if fmt else _guard(lambda: sniff_format(path))) != "points":
        return inputs
    spacing = _guard(lambda: infer_interval(path))
    configured = inputs.current.defaults.interval_s
    if spacing is None or math.isclose(spacing, configured):
        return inputs
    if inputs.sets_interval:
        _warn(
            f"{path}: the rows of a series are {spacing:g} s apart (median) and carry no "
            f"interval, but {inputs.config_name} sets interval_s={configured:g}: each row is read "
            f"as {configured:g} s of traffic. If the file holds {spacing:g} s windows, set "
            f"interval_s: {spacing:g} (or give the rows an interval column)."
        )
        return inputs
    _warn(
        f"{path}: the rows carry no interval; a series' rows are {spacing:g} s apart (median), "
        f"so they are read as {spacing:g} s windows (interval_s={spacing:g}). Set interval_s "
        f"in --config to say otherwise."
    )
    current = inputs.current
    windows = Candidate(
        current.name,
        replace(current.defaults, interval_s=spacing),
        {route: replace(c, interval_s=spacing) for route, c in current.routes.items()},
    )
    return replace(inputs, current=windows)


def _replay(
    history: History,
    candidates: Sequence[Candidate],
    labels: Sequence[Label],
    *,
    fmt: HistoryFormat | None,
    runbook: Runbook | None = None,
    slack: float,
    max_skew: float,
    max_gap: float = DEFAULT_MAX_GAP_S,
    quiet: bool = False,
) -> list[BacktestResult]:
    """Replay ``history`` (exit 2 with a message when it holds nothing to replay), with a
    progress bar on stderr unless ``quiet`` (see :func:`_progress`)."""
    what = f"replaying {len(candidates)} candidate(s)"
    if history.path is not None:
        path = history.path

        def from_file() -> list[BacktestResult]:
            with _progress(what, path.stat().st_size, quiet) as progress:
                return backtest_file(
                    path,
                    candidates,
                    labels,
                    fmt=fmt.value if fmt else None,
                    runbook=runbook,
                    slack_s=slack,
                    max_skew_s=max_skew,
                    max_gap_s=max_gap,
                    progress=progress,
                )

        return _guard(from_file)
    assert history.db is not None
    url = history.db

    def from_store() -> list[BacktestResult]:
        with Store.open(url) as store:
            span = store.points_span()
            points = store.read_points(since=history.since, until=history.until)
            first = history.since if history.since is not None else span[0] if span else 0.0
            last = history.until if history.until is not None else span[1] if span else first
            try:
                with _progress(what, last - first, quiet) as progress:
                    results = backtest_points(
                        _reporting(points, first, progress),
                        candidates,
                        labels,
                        runbook=runbook,
                        slack_s=slack,
                        max_skew_s=max_skew,
                        max_gap_s=max_gap,
                    )
            finally:
                points.close()
            if results[0].points == 0:
                held = f"it holds {_utc(span[0])} to {_utc(span[1])}" if span else "it holds none"
                asked = " ".join(
                    f"{name} {_utc(value)}"
                    for name, value in (("from", history.since), ("before", history.until))
                    if value is not None
                )
                require_history(results, f"{url}: no points to replay {asked or 'at all'}; {held}")
            return results

    return _guard(from_store)


@contextlib.contextmanager
def _progress(what: str, total: float, quiet: bool) -> Iterator[Callable[[float], None]]:
    """A transient progress bar on stderr, told how much of ``total`` is done (bytes of a
    file, seconds of the store's points). A replay of days takes a while, and silence reads
    like a hang; but a bar is only drawn for a person: not with ``quiet``, nor when stderr is
    not a terminal (a pipe, a log, CI)."""
    if quiet or not err.is_terminal or total <= 0:
        yield lambda done: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=min(done, total))


def _reporting(
    points: Iterable[Point], first: float, progress: Callable[[float], None]
) -> Iterator[Point]:
    """``points``, telling ``progress`` how far past ``first`` they are, every few thousand."""
    for n, point in enumerate(points, 1):
        if n % 8192 == 0:
            progress(point.t - first)
        yield point


def _utc(ts: float) -> str:
    return format_utc(ts, "%Y-%m-%dT%H:%M:%SZ")


def _print_warnings(result: BacktestResult, history: History) -> None:
    for warning in replay_warnings(result, sort_hint=history.sort_hint):
        _warn(warning)


GRID_FORM = "NAME=V1,V2,... (e.g. --grid spike_threshold=4,6)"
FIRE_AFTER_FORM = "N,N,... (e.g. --fire-after 1,3)"


def parse_grid(
    specs: Sequence[str], *, allowed: Sequence[str] | None = None
) -> dict[str, list[Any]]:
    """``["spike_threshold=4,6", "fire_after=2"]`` -> values per setting (a repeated name adds
    values); ValueError names the spec, what is wrong with it and the accepted form. With
    ``allowed``, only those settings may be given (``tune`` varies its thresholds only)."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--grid {spec!r}: no '='; the accepted form is {GRID_FORM}")
        if name == "interval_s":
            raise ValueError("--grid interval_s: the window length cannot vary between candidates")
        if allowed is not None and name not in allowed:
            known = "a setting tune does not vary" if name in setting_names() else "no such setting"
            if name == "fire_after":
                known += "; it has its own option, --fire-after 1,3"
            raise ValueError(f"--grid {name}: {known}; tune varies {', '.join(allowed)}")
        texts = [t.strip() for t in raw.split(",")]
        if not all(texts):
            raise ValueError(f"--grid {spec!r}: an empty value; the accepted form is {GRID_FORM}")
        values = []
        for text in texts:
            value: Any = text  # "2m" stays a string: *_s settings take durations
            with contextlib.suppress(ValueError):
                value = int(text) if text.lstrip("-").isdigit() else float(text)
            try:
                values.append(coerce_setting(name, value))
            except ValueError as exc:
                raise ValueError(
                    f"--grid {name}={text}: {exc}; the accepted form is {GRID_FORM}"
                ) from None
        grid.setdefault(name, []).extend(values)
    return grid


def parse_fire_after(text: str) -> list[int]:
    """``"1,3"`` -> ``[1, 3]``; ValueError names the value and the accepted form."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise ValueError(
                f"--fire-after {text}: {part!r} is not a whole number of at least 1; "
                f"the accepted form is {FIRE_AFTER_FORM}"
            )
        values.append(int(part))
    return values


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


#: How a proposal row over the false-alarm budget is marked (besides red).
OVER_BUDGET = "over budget"


def _print_table(table: Table) -> None:
    """``table`` on stdout, never cut: on a terminal it wraps to the window; elsewhere (a pipe,
    a file) there is no window, and Rich's 80 columns would squeeze cells into "traffic_spi…",
    so the table is printed as wide as its content."""
    for column in table.columns:
        column.overflow = "fold"  # a cell too wide for a narrow terminal wraps, never "…"
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    console.width = max(width, natural)  # print(width=) only narrows
    try:
        console.print(table)
    finally:
        console.width = width


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
        if s.current == s.proposed and not s.detected and s.budget_met and not s.held:
            continue
        fa = f"{s.current_false_alarms_per_day:.2f} → {s.false_alarms_per_day:.2f}"
        # Said in words too: the color is lost in a pipe, a log, or to a color-blind reader.
        wants = f" [yellow](wants {s.wanted:g})[/]" if s.wanted is not None else ""
        fire_wants = s.wanted_fire_after
        table.add_row(
            escape(s.route),
            s.kind.value,
            f"{s.param} {s.current:g} → {s.proposed:g}{wants}",
            f"{s.current_fire_after} → {s.fire_after}"
            + (f" [yellow](wants {fire_wants})[/]" if fire_wants is not None else ""),
            f"{s.detected}/{s.labels}" if s.labels else "—",
            fa if s.budget_met else f"[red]{fa} {OVER_BUDGET}[/]",
        )
    return table


def _speed(result: BacktestResult, wall: float) -> str:
    wall = max(wall, 1e-9)
    what = f"{result.events / wall:,.0f} events/s" if result.events else ""
    what = what or f"{result.points / wall:,.0f} points/s"
    return f"{coverage(result)} in {wall:.1f} s ({result.span_s / wall:,.0f}x real time, {what})"


@backtest_app.command("backtest")
def backtest_command(
    history: Path | None = HistoryArg,
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
    db: str | None = DbOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    max_skew: float = MaxSkewOption,
    max_gap: float = MaxGapOption,
    quiet: bool = QuietOption,
) -> None:
    """Score detector settings on recorded history (a file, or the store's points with --db):
    precision, recall, false alarms per day and time to detect, per candidate."""
    started = time.perf_counter()
    source = _history(history, db, since, until)
    _check_gap(max_gap, max_skew)
    inputs = _point_interval(source, _inputs(labels, config), fmt)
    _need(runbook, "runbook")
    book: Runbook | None = _guard(lambda: load_runbook(runbook)) if runbook else None
    try:
        candidates = grid_candidates(inputs.current, parse_grid(grid or []))
    except ValueError as exc:
        _fail(str(exc))
    results = _replay(
        source,
        candidates,
        inputs.labels,
        fmt=fmt,
        runbook=book,
        slack=slack,
        max_skew=max_skew,
        max_gap=max_gap,
        quiet=quiet,
    )
    wall = time.perf_counter() - started
    _print_table(results_table(results))
    for result in results if details or len(results) == 1 else ():
        _print_table(series_table(result))
        for label in result.missed:
            console.print(f"  missed: {escape(label.title)}")
        for name, count in result.actions.items():
            wasted = result.actions_on_false_alarms.get(name, 0)
            console.print(f"  runbook {escape(name)}: {count} proposed, {wasted} on false alarms")
    console.print("replayed " + _speed(results[0], wall))
    if markdown is not None:
        _guard(lambda: markdown.write_text(render_markdown(results), encoding="utf-8"))
        console.print(f"wrote {escape(str(markdown))}")
    _print_warnings(results[0], source)


@backtest_app.command("tune")
def tune_command(
    history: Path | None = HistoryArg,
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
    db: str | None = DbOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    max_skew: float = MaxSkewOption,
    max_gap: float = MaxGapOption,
    quiet: bool = QuietOption,
) -> None:
    """Propose thresholds per route and signal that keep false alarms within the budget, and
    print them as a diff that applies to --config (``patch`` or ``git apply``).

    Thresholds are only lowered from history long enough to show the budget is met."""
    started = time.perf_counter()
    source = _history(history, db, since, until)
    _check_gap(max_gap, max_skew)
    inputs = _point_interval(source, _inputs(labels, config), fmt)
    try:
        values = parse_grid(grid or [], allowed=tuple(TUNED.values()))
        sweep = make_sweep(inputs.current, grid=values, fire_after=parse_fire_after(fire_after))
    except (ValueError, StanchError) as exc:
        _fail(str(exc))
    results = _replay(
        source,
        sweep.candidates,
        inputs.labels,
        fmt=fmt,
        slack=slack,
        max_skew=max_skew,
        max_gap=max_gap,
        quiet=quiet,
    )
    proposal = propose(sweep, results, budget=budget)
    wall = time.perf_counter() - started
    _print_table(proposal_table(proposal))
    _print_table(results_table([proposal.baseline, proposal.result]))
    after_name = str(out) if out is not None else "proposed"
    if inputs.config_text is None:
        after_text = proposal.yaml()
        diff = proposal.diff(before_name=inputs.config_name, after_name=after_name)
    else:
        before_text = inputs.config_text
        proposed = (proposal.proposed.defaults, proposal.proposed.routes)
        after_text = _guard(
            lambda: edited_config_text(before_text, proposed, filename=inputs.config_name)
        )
        diff = config_diff(
            before_text, after_text, before_name=inputs.config_name, after_name=after_name
        )
    if diff:
        sys.stdout.write(diff)
    else:
        console.print("No change proposed: the current settings are already the choice.")
    console.print(f"{len(sweep.candidates)} candidates over " + _speed(results[0], wall))
    if out is not None:
        _guard(lambda: out.write_bytes(after_text.encode("utf-8")))
        console.print(f"wrote {escape(str(out))}")
    _print_warnings(results[0], source)
    if not proposal.can_loosen:
        _warn(_short_history(proposal))


def _short_history(proposal: Proposal) -> str:
    thresholds = sum(s.wanted is not None for s in proposal.signals)
    routes = len({s.route for s in proposal.signals if s.wanted_fire_after is not None})
    would = (
        f" The evidence alone would have lowered {thresholds} threshold(s) and fire_after on "
        f'{routes} route(s): the table\'s "wants".'
        if thresholds or routes
        else ""
    )
    return (
        f"only {proposal.history_days:.2f} days of history: too short to show that "
        f"{proposal.budget:g} false alarms/day per route+kind is met (with no false alarm in d "
        f"days, rates up to 3/d a day are still plausible), so no threshold or fire_after was "
        f"lowered. Lowering needs {proposal.required_days:g} days or more.{would}"
    )
