"""``stanch eval nab DIR``: score a Stanch detector on a NAB corpus with NAB v1.1's protocol.

Registered in the main CLI as ``app.add_typer(eval_app, name="eval")``. Result CSVs are written
in NAB's own layout so that NAB's scorer can check ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stanch.evaluation.corpus import (
    CorpusError,
    DataFile,
    coverage_warnings,
    default_dir,
    load_corpus,
    result_path,
    stale_results,
    write_result,
)
from stanch.evaluation.nab import ProfileResult, ScoredFile, score_corpus
from stanch.evaluation.runner import DEFAULT_DETECTOR, DETECTORS, run_file

eval_app = typer.Typer(help="Evaluate detectors on labeled benchmarks.", no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never split a file:line


@eval_app.callback()
def _group() -> None:
    """Evaluate detectors on labeled benchmarks."""


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def _prepare_out(out: Path) -> None:
    """Make the results folder before the run, so a bad ``--out`` fails in a second, not after
    minutes of scoring."""
    if out.exists() and not out.is_dir():
        _fail(f"--out {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"--out {out}: cannot create the directory: {exc.strerror or exc}")


@eval_app.command("nab")
def nab(
    directory: Path | None = typer.Argument(
        None, help="NAB directory with data/ and labels/ (default: $STANCH_NAB_DIR)."
    ),
    detector: str = typer.Option(
        DEFAULT_DETECTOR, "--detector", "-d", help=f"One of: {', '.join(DETECTORS)}."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", "-t", help="Fixed threshold; default: optimized per profile."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write result CSVs here, in NAB's layout."
    ),
    files: bool = typer.Option(True, "--files/--no-files", help="Print the per-file table."),
) -> None:
    """Run a detector over every labeled file and print NAB's three normalized scores."""
    root = directory or default_dir()
    if detector not in DETECTORS:
        _fail(f"unknown detector {detector!r}; choose one of: {', '.join(DETECTORS)}")
    if threshold is not None and not 0.0 <= threshold <= 1.1:
        _fail("--threshold must be between 0 and 1.1")
    try:
        corpus = load_corpus(root)
    except CorpusError as exc:
        _fail(str(exc))
    for file in corpus:
        if not file.values:
            _warn(f"{root / 'data' / file.name} has a header but no rows: it scores nothing")
    for note in coverage_warnings(root):
        _warn(note)
    if out is not None:
        _prepare_out(out)
    factory = DETECTORS[detector]
    scored: list[ScoredFile] = []
    written: set[Path] = set()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[file]}"),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(detector, total=len(corpus), file="")
        for file in corpus:
            progress.update(task, file=file.name)
            scores = run_file(factory, file)
            scored.append(ScoredFile(file.name, scores, file.windows))
            if out is not None:
                path = result_path(out, detector, file)
                _write(path, file, scores)
                written.add(path)
            progress.advance(task)
    results = score_corpus(scored, threshold)
    if files:
        console.print(_file_table(corpus, results))
    console.print(_summary_table(detector, results))
    if out is not None:
        _remove_stale(out, detector, written)
        console.print(f"result CSVs written under {escape(str(out / detector))}")


def _remove_stale(out: Path, detector: str, written: set[Path]) -> None:
    """Delete this detector's result CSVs left by an earlier run over another corpus, so the
    folder holds exactly this run (NAB's scorer reads every file it finds)."""
    stale = stale_results(out, detector, written)
    for path in stale:
        try:
            path.unlink()
        except OSError as exc:
            _fail(f"cannot remove the stale result {path}: {exc.strerror or exc}")
    if stale:
        _warn(f"removed {len(stale)} result CSV(s) of an earlier run from {out / detector}")


def _write(path: Path, file: DataFile, scores: list[float]) -> None:
    try:
        write_result(path, file, scores)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")


def _summary_table(detector: str, results: tuple[ProfileResult, ...]) -> Table:
    table = Table(title=f"NAB v1.1 — {detector}")
    table.add_column("profile", no_wrap=True)
    table.add_column("normalized", justify="right")
    table.add_column("raw", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("windows hit", justify="right")
    table.add_column("false pos.", justify="right")
    for r in results:
        hit = sum(f.detected for f in r.files)
        total = sum(f.windows for f in r.files)
        fps = sum(f.false_positives for f in r.files)
        table.add_row(
            r.profile.name,
            f"{r.normalized:.2f}",
            f"{r.raw:.2f}",
            f"{r.threshold:.4f}",
            f"{hit}/{total}",
            str(fps),
        )
    return table


def _file_table(corpus: list[DataFile], results: tuple[ProfileResult, ...]) -> Table:
    """One row per file, readable at 80 columns (CI logs): short headers explained in the
    caption, numbers never wrapped, and a long file name folded onto a second line rather than
    cut, so every name can still be found in the log."""
    standard = results[0]
    table = Table(
        title=f"per file ({standard.profile.name}, threshold {standard.threshold:.4f})",
        caption="hit: windows detected / labeled; FP: false positives; raw: NAB raw score",
    )
    table.add_column("file", overflow="fold")
    for header in ("rows", "hit", "FP", "raw"):
        table.add_column(header, justify="right", no_wrap=True)
    for file, r in zip(corpus, standard.files, strict=True):
        table.add_row(
            file.name,
            str(len(file.values)),
            f"{r.detected}/{r.windows}",
            str(r.false_positives),
            f"{r.raw:+.2f}",
        )
    return table
