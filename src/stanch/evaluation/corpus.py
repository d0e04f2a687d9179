"""Reading a NAB corpus from disk and writing results in NAB's own layout.

The corpus is never copied into the repository: it is read where it lies, by default
``$STANCH_NAB_DIR`` or the team's shared copy. Timestamps are compared as parsed datetimes,
because the labels carry microseconds (``2014-04-10 07:15:00.000000``) that the data rows do not.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stanch.core.errors import StanchError
from stanch.evaluation.nab import Window

if TYPE_CHECKING:
    from _csv import Reader

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
    """A timestamp as a naive UTC datetime, so labels and rows compare whatever their zone.

    Raises ``ValueError`` with the offending text; callers add the file and line.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"bad timestamp {text!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


@dataclass(frozen=True, slots=True)
class _Columns:
    """A file's rows: timestamps as written (for result files) and parsed (for windows)."""

    timestamps: tuple[str, ...]
    times: tuple[datetime, ...]
    values: tuple[float, ...]


def read_series(path: Path) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``timestamp,value`` rows of a CSV file (plain or gzipped)."""
    rows = _read_columns(path, "value")
    return rows.timestamps, rows.values


def read_scores(path: Path) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``timestamp,anomaly_score`` rows of a NAB result file (plain or gzipped)."""
    rows = _read_columns(path, "anomaly_score")
    return rows.timestamps, rows.values


def _read_columns(path: Path, column: str) -> _Columns:
    """Every row checked as it is read, so an error names the file and the line.

    Lines are decoded one by one (not by the text layer, in blocks) so that bad UTF-8 is
    reported at its own line.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    reader = None
    try:
        with opener(path, "rb") as fh:
            reader = csv.reader(raw.decode("utf-8") for raw in fh)
            return _check_rows(path, reader, column)
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, or a broken gzip stream
        raise CorpusError(f"{path}: cannot read: {exc}") from None
    except UnicodeDecodeError:  # raised decoding the line after the last the reader took
        raise CorpusError(f"{path}:{_line_num(reader) + 1}: not valid UTF-8 text") from None
    except csv.Error as exc:  # raised parsing the last line the reader took
        raise CorpusError(f"{path}:{_line_num(reader)}: {exc}") from None


def _line_num(reader: object) -> int:
    return int(getattr(reader, "line_num", 0))


def _check_rows(path: Path, reader: Reader, column: str) -> _Columns:
    """Rows must be complete, in time order (NAB reads each file forwards; equal timestamps
    occur in real NAB files and are kept) and carry a finite number: a NaN or an infinity in a
    benchmark file is a broken file, not a measurement."""
    header = next(reader, None)
    if header is None:
        raise CorpusError(f"{path}:1: empty file: expected a header 'timestamp,{column}'")
    header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark is not part of the name
    for needed in ("timestamp", column):
        if needed not in header:
            raise CorpusError(f"{path}:1: no {needed!r} column (header: {','.join(header)})")
    time_at, value_at = header.index("timestamp"), header.index(column)
    timestamps: list[str] = []
    times: list[datetime] = []
    values: list[float] = []
    for cells in reader:
        if not cells:
            continue
        where = f"{path}:{reader.line_num}"
        if len(cells) != len(header):
            raise CorpusError(
                f"{where}: {len(cells)} field(s), the header has {len(header)} ({','.join(header)})"
            )
        stamp, text = cells[time_at], cells[value_at]
        try:
            time = _parse_time(stamp)
        except ValueError as exc:
            raise CorpusError(f"{where}: {exc}") from None
        try:
            value = float(text)
        except ValueError:
            raise CorpusError(f"{where}: {column} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise CorpusError(f"{where}: {column} {text!r} is not a finite number")
        if times and time < times[-1]:
            raise CorpusError(
                f"{where}: timestamp {stamp!r} is earlier than the row before: "
                "rows must be in time order"
            )
        timestamps.append(stamp)
        times.append(time)
        values.append(value)
    return _Columns(tuple(timestamps), tuple(times), tuple(values))


@dataclass(frozen=True, slots=True)
class Labels:
    """The checked contents of ``combined_windows.json``: each file's windows as datetimes.

    ``text`` is kept so that an error found later (a window that covers no row) can still name
    the line of the file's entry.
    """

    path: Path
    text: str
    windows: dict[str, tuple[tuple[datetime, datetime], ...]]

    def where(self, name: str) -> str:
        """``path:line`` of ``name``'s entry (the line of its key; no line if not found)."""
        return _where(self.path, self.text, name)


def _where(path: Path, text: str, name: str) -> str:
    at = text.find(json.dumps(name, ensure_ascii=False))
    return f"{path}:{text.count(chr(10), 0, at) + 1}" if at >= 0 else str(path)


def load_windows(root: Path) -> Labels:
    """The labels file, every entry checked: ``"<category>/<file>.csv": [[start, end], ...]``."""
    path = root / WINDOWS_FILE
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CorpusError(f"{root} is not a NAB directory: {WINDOWS_FILE} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read: {exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise CorpusError(f"{path}: not valid JSON: nested too deeply") from None
    if not isinstance(raw, dict):
        raise CorpusError(f"{path}:1: expected an object of file -> windows")
    windows = {name: _check_entry(path, text, name, entry) for name, entry in raw.items()}
    return Labels(path, text, windows)


def _check_entry(
    path: Path, text: str, name: str, entry: object
) -> tuple[tuple[datetime, datetime], ...]:
    where = f"{_where(path, text, name)}: {name!r}"
    category, _, stem = name.partition("/")
    if not category or not stem or "/" in stem or {category, stem} & {".", ".."}:
        raise CorpusError(f"{where}: a key must be '<category>/<file>.csv'")
    if not isinstance(entry, list):
        raise CorpusError(f"{where}: expected a list of [start, end] windows, got {entry!r}")
    out: list[tuple[datetime, datetime]] = []
    for i, window in enumerate(entry, 1):
        if not (
            isinstance(window, list)
            and len(window) == 2
            and all(isinstance(edge, str) for edge in window)
        ):
            raise CorpusError(f"{where}: window {i} must be [start, end], got {window!r}")
        try:
            start, end = _parse_time(window[0]), _parse_time(window[1])
        except ValueError as exc:
            raise CorpusError(f"{where}: window {i}: {exc}") from None
        if end < start:
            raise CorpusError(f"{where}: window {i} ends ({window[1]}) before it starts")
        out.append((start, end))
    return tuple(out)


def _window_rows(times: Sequence[datetime], start: datetime, end: datetime) -> Window | None:
    """Row indices of a window (rows in time order): first at or after ``start``, last at or
    before ``end``; None when no row falls inside."""
    first, stop = bisect_left(times, start), bisect_right(times, end)
    return Window(first, stop - 1) if first < stop else None


def iter_corpus(root: Path) -> Iterator[DataFile]:
    """Every labeled data file under ``root/data``, in sorted order."""
    if not root.is_dir():
        raise CorpusError(f"no NAB directory at {root}")
    labels = load_windows(root)
    data = root / "data"
    if not data.is_dir():
        raise CorpusError(f"{root} is not a NAB directory: data/ is missing")
    names = sorted(name for name in labels.windows if (data / name).is_file())
    if not names:
        raise CorpusError(f"{root}: no labeled data file found under data/")
    for name in names:
        rows = _read_columns(data / name, "value")
        windows: list[Window] = []
        for i, (start, end) in enumerate(labels.windows[name], 1):
            window = _window_rows(rows.times, start, end)
            if window is None:
                raise CorpusError(
                    f"{labels.where(name)}: {name!r}: window {i} ({start} .. {end}) covers no "
                    f"row of {data / name} ({len(rows.times)} rows)"
                )
            windows.append(window)
        yield DataFile(name, rows.timestamps, rows.values, tuple(windows))


def coverage_warnings(root: Path) -> list[str]:
    """What a run over ``root`` will leave out, said aloud.

    NAB scores only files named in the labels; a CSV dropped into ``data/`` without a label
    entry, or a label entry whose file is gone, would otherwise shrink the corpus silently and
    change every normalized score without a word. Call after :func:`load_corpus` succeeded."""
    labels = load_windows(root)
    data = root / "data"
    on_disk = sorted(
        path.relative_to(data).as_posix() for path in data.glob("*/*.csv") if path.is_file()
    )
    unlabeled = [name for name in on_disk if name not in labels.windows]
    missing = sorted(name for name in labels.windows if not (data / name).is_file())
    notes = [
        f"{data / name} has no entry in {root / WINDOWS_FILE}: not scored" for name in unlabeled
    ]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        notes.append(
            f"{len(missing)} file(s) named in {root / WINDOWS_FILE} are not under {data}: {shown}"
        )
    return notes


def stale_results(out: Path, detector: str, written: set[Path]) -> list[Path]:
    """Result CSVs of ``detector`` under ``out`` that this run did not write.

    They come from an earlier run over another corpus; left in place, NAB's own scorer would
    score them beside this run's files and report a mixture. Only files of our own layout
    (``<detector>/<category>/<detector>_*.csv``) are ever listed."""
    base = out / detector
    if not base.is_dir():
        return []
    return sorted(
        path for path in base.glob(f"*/{detector}_*.csv") if path.is_file() and path not in written
    )


def load_corpus(root: Path) -> list[DataFile]:
    """The whole corpus; a corpus without a single data row is an error, not a score of 0."""
    corpus = list(iter_corpus(root))
    if not any(file.values for file in corpus):
        raise CorpusError(f"{root}: no data rows: every labeled file under data/ is empty")
    return corpus


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
