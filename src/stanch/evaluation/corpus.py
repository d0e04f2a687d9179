"""Reading a NAB corpus from disk and writing results in NAB's own layout.

The corpus is never copied into the repository: it is read where it lies, by default
``$STANCH_NAB_DIR`` or the team's shared copy. Timestamps are compared as parsed datetimes,
because the labels carry microseconds (``2014-04-10 07:15:00.000000``) that the data rows do not.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from stanch.core.errors import StanchError
from stanch.evaluation.nab import Window

ENV_VAR = "STANCH_NAB_DIR"
WINDOWS_FILE = Path("labels") / "combined_windows.json"


class CorpusError(StanchError):
    """The NAB directory is missing, incomplete or malformed."""


@dataclass(frozen=True, slots=True)
class DataFile:
    """One NAB data file: ``name`` is ``<category>/<file>.csv`` as in the label files."""

    name: str
    timestamps: tuple[str, ...]
    values: tuple[float, ...]
    windows: tuple[Window, ...]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def stem(self) -> str:
        return self.name.split("/", 1)[1]

    def labels(self) -> list[int]:
        """1 for rows inside a window, as NAB's result files carry them."""
        out = [0] * len(self.values)
        for w in self.windows:
            for i in range(w.start, w.end + 1):
                out[i] = 1
        return out


def default_dir() -> Path:
    """``$STANCH_NAB_DIR``, else the shared copy next to the repository checkout."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nab"


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CorpusError(f"bad timestamp {text!r}") from exc


def _window_rows(times: Sequence[datetime], start: str, end: str, name: str) -> Window:
    """Row indices of a window: first row at or after ``start``, last at or before ``end``."""
    t0, t1 = _parse_time(start), _parse_time(end)
    inside = [i for i, t in enumerate(times) if t0 <= t <= t1]
    if not inside:
        raise CorpusError(f"{name}: window {start} .. {end} covers no row")
    return Window(inside[0], inside[-1])


def read_series(path: Path) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``timestamp,value`` rows of a CSV file (plain or gzipped)."""
    return _read_columns(path, "value")


def read_scores(path: Path) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``timestamp,anomaly_score`` rows of a NAB result file (plain or gzipped)."""
    return _read_columns(path, "anomaly_score")


def _read_columns(path: Path, column: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or column not in reader.fieldnames:
                raise CorpusError(f"{path}: no {column!r} column")
            times: list[str] = []
            values: list[float] = []
            for row in reader:
                times.append(row["timestamp"])
                values.append(float(row[column]))
    except (OSError, ValueError, KeyError) as exc:
        raise CorpusError(f"{path}: {exc}") from exc
    return tuple(times), tuple(values)


def load_windows(root: Path) -> dict[str, list[list[str]]]:
    path = root / WINDOWS_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CorpusError(f"{root} is not a NAB directory: {WINDOWS_FILE} is missing") from exc
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CorpusError(f"{path}: expected an object of file -> windows")
    return raw


def iter_corpus(root: Path) -> Iterator[DataFile]:
    """Every labeled data file under ``root/data``, in sorted order."""
    if not root.is_dir():
        raise CorpusError(f"no NAB directory at {root}")
    labels = load_windows(root)
    data = root / "data"
    if not data.is_dir():
        raise CorpusError(f"{root} is not a NAB directory: data/ is missing")
    names = sorted(name for name in labels if (data / name).is_file())
    if not names:
        raise CorpusError(f"{root}: no labeled data file found under data/")
    for name in names:
        times, values = read_series(data / name)
        parsed = [_parse_time(t) for t in times]
        windows = tuple(_window_rows(parsed, s, e, name) for s, e in labels[name])
        yield DataFile(name, times, values, windows)


def load_corpus(root: Path) -> list[DataFile]:
    return list(iter_corpus(root))


def result_path(out: Path, detector: str, file: DataFile) -> Path:
    """NAB's layout: ``<out>/<detector>/<category>/<detector>_<file>.csv``."""
    return out / detector / file.category / f"{detector}_{file.stem}"


def write_result(path: Path, file: DataFile, scores: Sequence[float]) -> None:
    """A result CSV that NAB's own scorer reads: ``timestamp,value,anomaly_score,label``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for row in zip(file.timestamps, file.values, scores, file.labels(), strict=True):
            writer.writerow([row[0], repr(row[1]), repr(row[2]), row[3]])
