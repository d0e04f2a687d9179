"""Recorded history files for backtests: request events and metric points, read as streams.

Two file formats, both read one row at a time (never a whole file in memory):

- **Request events**, JSONL, one object a line, as the middleware records them::

      {"ts": 1764061200.25, "service": "shop", "method": "GET", "route": "/search",
       "status": 200, "latency_s": 0.041, "client": "client-007", "version": "1.4.2"}

  ``client``, ``version`` and ``enforced`` are optional; unknown fields are ignored.
- **Metric points**, CSV with a header row or JSONL, one closed window of one series a row::

      ts,service,route,requests,errors,p50,p95,p99
      1764061200,shop,GET /search,4,0,0.038,0.052,0.060

  ``ts`` is the window's start; ``route`` is ``"METHOD /template"`` or ``"*"`` for the whole
  service; an empty (CSV) or null (JSON) quantile means "no latency measured". Optional
  columns: ``enforced`` (requests Stanch answered itself, default 0), ``interval`` (seconds,
  default the reader's), and in JSONL ``clients`` (``{"client-007": [requests, errors,
  enforced]}``). A file needs a row per series per interval, zero rows included: silence is
  a signal, and a missing row is not silence. :mod:`stanch.evaluation.recorders` writes this
  format (and the same fields to the store's ``points`` table).

Labeled incidents, the third input of a backtest, are :mod:`stanch.evaluation.labels`; it
shares :func:`parse_history_time`, :func:`open_input` and :func:`short_repr` with the readers here.

Every bad row raises :class:`~stanch.core.errors.ValidationError` saying
``file:line: field: problem``; nothing else escapes a reader, whatever the bytes.

Times are epoch seconds (or ISO-8601) and must be plausible: finite and in
:data:`MIN_TIME` .. :data:`MAX_TIME` (2000-01-01 to 2200-01-01 UTC). A time outside that is
refused rather than replayed: a millisecond timestamp read as seconds lands in year 58135, and
one stray far-future row would otherwise stretch the history by years. A value above
:data:`_MS_HINT` gets the hint that it looks like milliseconds (or micro-, nanoseconds).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Final

from stanch.core.errors import ValidationError
from stanch.core.events import RequestEvent
from stanch.core.series import SERVICE_WIDE, SeriesKey
from stanch.core.windows import ClientStats, Point

MAX_LINE_BYTES: Final = 1024 * 1024
_EVENT_FIELDS: Final = ("ts", "service", "method", "route", "status", "latency_s")
_POINT_FIELDS: Final = ("ts", "service", "route", "requests", "errors", "p50", "p95", "p99")
_POINT_KEYS: Final = frozenset(_POINT_FIELDS)
_DECODER: Final = json.JSONDecoder()
_INF: Final = math.inf
#: The plausible times, in epoch seconds: 2000-01-01 .. 2200-01-01 UTC (end excluded).
MIN_TIME: Final = 946684800.0
MAX_TIME: Final = 7258118400.0
_MS_HINT: Final = 1e11  # epoch seconds reach 1e11 in year 5138; milliseconds passed it in 1973


class _RowError(Exception):
    """A bad field inside one row; the reader adds file and line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_time(value: object) -> float:
    """Epoch seconds from a number, a numeric string, an ISO-8601 string or a datetime.

    Naive datetimes are UTC. Raises ValueError for anything else or for non-finite times.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected epoch seconds or an ISO-8601 time, got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"time out of range: {short_repr(value)}") from None
    elif isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    elif isinstance(value, date):
        seconds = datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    elif isinstance(value, str) and len(value) <= 64:
        try:
            seconds = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(
                    f"expected epoch seconds or an ISO-8601 time, got {value!r}"
                ) from None
            return parse_time(parsed)
    else:
        raise ValueError(f"expected epoch seconds or an ISO-8601 time, got {short_repr(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"time must be finite, got {short_repr(value)}")
    return seconds


def parse_history_time(value: object) -> float:
    """:func:`parse_time`, refusing implausible times (see :func:`check_time`): the times of
    history rows and labels, which the replay turns into windows and dates."""
    return check_time(parse_time(value), value)


def check_time(seconds: float, value: object = None) -> float:
    """``seconds`` if it is a plausible time (:data:`MIN_TIME` .. :data:`MAX_TIME`), else
    ValueError saying why, with a hint when it looks like milli-, micro- or nanoseconds."""
    if MIN_TIME <= seconds < MAX_TIME:
        return seconds
    shown = short_repr(seconds if value is None else value)
    if not math.isfinite(seconds):
        raise ValueError(f"time must be finite, got {shown}")
    message = f"time {shown} is outside 2000-01-01..2200-01-01 UTC"
    if seconds > _MS_HINT:
        unit = (
            "milliseconds"
            if seconds < 1e14
            else "microseconds"
            if seconds < 1e17
            else ("nanoseconds")
        )
        message += f" (looks like {unit} since the epoch; Stanch expects seconds)"
    else:
        message += " (expected epoch seconds)"
    raise ValueError(message)


def format_utc(ts: float, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """``ts`` as a UTC time in ``fmt``; a time no datetime can hold is shown as its number
    (points read from a store, or labels built in code, are not range-checked)."""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime(fmt)
    except (ValueError, OverflowError, OSError):
        return f"{ts:g}"


# --------------------------------------------------------------------------- readers


#: A progress callback: bytes of the file read so far.
Progress = Callable[[int], None]
#: Rows between two progress reports: often enough for a bar, rare enough to cost nothing.
_PROGRESS_ROWS: Final = 16384


def read_events(path: str | Path, *, progress: Progress | None = None) -> Iterator[RequestEvent]:
    """Request events from a JSONL file, in file order; ``progress`` is told the bytes read
    every few thousand rows."""
    for lineno, row in _jsonl_rows(path, progress):
        try:
            yield _event(row)
        except _RowError as exc:
            raise ValidationError(f"{path}:{lineno}: {exc.field}: {exc.message}") from None


def read_points(
    path: str | Path, *, interval: float = 1.0, progress: Progress | None = None
) -> Iterator[Point]:
    """Metric points from a CSV (``.csv``) or JSONL file, in file order.

    ``interval`` is the window length of rows that carry no ``interval`` of their own;
    ``progress`` is told the bytes read every few thousand rows.
    """
    keys: dict[tuple[str, str], SeriesKey] = {}
    csv_file = str(path).lower().endswith(".csv")
    rows = _csv_rows(path, progress) if csv_file else _jsonl_rows(path, progress)
    for lineno, row in rows:
        try:
            yield _point(row, interval, keys)
        except _RowError as exc:
            raise ValidationError(f"{path}:{lineno}: {exc.field}: {exc.message}") from None


#: Rows :func:`infer_interval` reads: enough for hundreds of windows of dozens of series.
INFER_ROWS: Final = 20_000


def infer_interval(path: str | Path, *, rows: int = INFER_ROWS) -> float | None:
    """The window length of a points file whose rows do not say it: the median spacing of
    consecutive rows of one series, over the first ``rows`` rows. None when the rows carry an
    ``interval`` of their own, or no series has two rows to measure.

    Why: a row is one window of a series, so a file recorded at 60 s read as 1 s windows
    shows every route at 60 times its traffic, and the detectors' windows in points (warm-up,
    half-lives, burn windows) 60 times too long in time. Without a setting, the file's own
    spacing is the best evidence of what it holds; the median, so a gap or a late row does not
    count. Bad rows raise ValidationError, as reading the file would.
    """
    csv_file = str(path).lower().endswith(".csv")
    stream: Generator[tuple[int, dict[str, Any]], None, None] = (
        _csv_rows(path) if csv_file else _jsonl_rows(path)
    )
    last: dict[tuple[object, object], float] = {}
    spacings: list[float] = []
    try:
        for n, (lineno, row) in enumerate(stream):
            if n >= rows:
                break
            if row.get("interval") not in (None, ""):
                return None
            try:
                t = _time(row, "ts")
            except _RowError as exc:
                raise ValidationError(f"{path}:{lineno}: {exc.field}: {exc.message}") from None
            series = (row.get("service"), row.get("route"))
            before = last.get(series)
            if before is not None and t > before:
                spacings.append(t - before)
            last[series] = t
    finally:
        stream.close()
    return statistics.median(spacings) if spacings else None


def sniff_format(path: str | Path) -> str:
    """``"points"`` for CSV files and JSONL whose first row has ``requests``, else ``"events"``."""
    if str(path).lower().endswith(".csv"):
        return "points"
    for _, row in _jsonl_rows(path):
        return "points" if "requests" in row else "events"
    return "events"


def open_input(path: str | Path) -> IO[bytes]:
    """``path`` opened for reading in binary; a file that cannot be read is a ValidationError
    in the readers' ``file:line: field: problem`` form, not an OSError traceback."""
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise ValidationError(f"{path}:1: (file): cannot read: {exc.strerror or exc}") from None


def _jsonl_rows(
    path: str | Path, progress: Progress | None = None
) -> Generator[tuple[int, dict[str, Any]], None, None]:
    decode = _DECODER.decode  # json.loads minus its per-call set-up: a third of a row's cost
    with open_input(path) as fh:
        lineno = 0
        while True:
            try:
                raw = fh.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                raise ValidationError(f"{path}:{lineno + 1}: (file): {exc}") from None
            if not raw:
                if progress is not None:
                    progress(fh.tell())
                return
            lineno += 1
            if progress is not None and lineno % _PROGRESS_ROWS == 0:
                progress(fh.tell())
            if len(raw) > MAX_LINE_BYTES:
                raise ValidationError(
                    f"{path}:{lineno}: (line): longer than {MAX_LINE_BYTES} bytes"
                )
            try:
                row = decode(raw.decode("utf-8"))
            except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, huge ints
                if not raw.strip():
                    continue
                raise ValidationError(f"{path}:{lineno}: (json): not a valid JSON object") from None
            if type(row) is not dict:
                raise ValidationError(
                    f"{path}:{lineno}: (row): expected a JSON object, got {type(row).__name__}"
                )
            yield lineno, row


def _csv_rows(
    path: str | Path, progress: Progress | None = None
) -> Generator[tuple[int, dict[str, Any]], None, None]:
    with open_input(path) as fh:
        try:
            text = (line.decode("utf-8") for line in fh)
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                return
            missing = [f for f in _POINT_FIELDS if f not in header]
            if missing:
                raise ValidationError(
                    f"{path}:1: (header): missing column(s) {', '.join(missing)}; "
                    f"expected {','.join(_POINT_FIELDS)}"
                )
            for cells in reader:
                if not cells:
                    continue
                if len(cells) != len(header):
                    raise ValidationError(
                        f"{path}:{reader.line_num}: (row): {len(cells)} cells, "
                        f"the header has {len(header)}"
                    )
                if progress is not None and reader.line_num % _PROGRESS_ROWS == 0:
                    progress(fh.tell())
                yield reader.line_num, dict(zip(header, cells, strict=True))
            if progress is not None:
                progress(fh.tell())
        except UnicodeDecodeError:
            raise ValidationError(f"{path}:{_csv_line(reader)}: (file): not valid UTF-8") from None
        except csv.Error as exc:
            raise ValidationError(f"{path}:{_csv_line(reader)}: (csv): {exc}") from None


def _csv_line(reader: Any) -> int:
    return int(getattr(reader, "line_num", 0)) + 1


def _event(row: dict[str, Any]) -> RequestEvent:
    get = row.get
    ts, service, method, route = get("ts"), get("service"), get("method"), get("route")
    status, latency = get("status"), get("latency_s")
    client, version, enforced = get("client", ""), get("version", ""), get("enforced", "")
    # The well-formed row, checked in one expression; anything else takes the slow path,
    # which says what is wrong. (``-inf < x < inf`` is False for NaN too.)
    if (
        type(ts) is float
        and MIN_TIME <= ts < MAX_TIME
        and type(status) is int
        and 100 <= status <= 599
        and type(latency) is float
        and 0.0 <= latency < _INF
        and type(service) is str
        and type(method) is str
        and type(route) is str
        and type(client) is str
        and type(version) is str
        and type(enforced) is str
        and service
        and method
        and route
    ):
        if not method.isupper():
            method = method.upper()
        return RequestEvent(ts, service, method, route, status, latency, client, version, enforced)
    return _checked_event(row)


def _checked_event(row: dict[str, Any]) -> RequestEvent:
    for name in _EVENT_FIELDS:
        if name not in row:
            raise _RowError(name, "required field missing")
    status = row["status"]
    if type(status) is not int or not 100 <= status <= 599:
        raise _RowError("status", f"expected an HTTP status 100..599, got {short_repr(status)}")
    latency = _number(row, "latency_s")
    if latency < 0.0:
        raise _RowError("latency_s", f"must be >= 0, got {latency}")
    return RequestEvent(
        ts=_time(row, "ts"),
        service=_text(row, "service"),
        method=_text(row, "method").upper(),
        route=_text(row, "route"),
        status=status,
        latency_s=latency,
        client=_text(row, "client", required=False),
        version=_text(row, "version", required=False),
        enforced=_text(row, "enforced", required=False),
    )


def _point(row: dict[str, Any], interval: float, keys: dict[tuple[str, str], SeriesKey]) -> Point:
    if not row.keys() >= _POINT_KEYS:
        missing = next(name for name in _POINT_FIELDS if name not in row)
        raise _RowError(missing, "required field missing")
    service, route = row["service"], row["route"]
    key = keys.get((service, route)) if type(service) is str and type(route) is str else None
    if key is None:
        service, route = _text(row, "service"), _text(row, "route")
        if route != SERVICE_WIDE and " /" not in route:
            raise _RowError("route", f"expected 'METHOD /template' or '*', got {short_repr(route)}")
        key = keys[(service, route)] = SeriesKey(service, route)
    requests, errors = _count(row, "requests"), _count(row, "errors")
    enforced = _count(row, "enforced") if row.get("enforced") not in (None, "") else 0
    if enforced > requests:
        raise _RowError("enforced", f"{enforced} is more than the {requests} requests")
    if errors > requests - enforced:
        raise _RowError("errors", f"{errors} is more than the {requests - enforced} served")
    if row.get("interval") not in (None, ""):
        interval = _number(row, "interval")
        if interval <= 0.0:
            raise _RowError("interval", f"must be > 0, got {interval}")
    return Point(
        key=key,
        t=_time(row, "ts"),
        interval=interval,
        requests=requests,
        served=requests - enforced,
        errors=errors,
        enforced=enforced,
        p50=_quantile(row, "p50"),
        p95=_quantile(row, "p95"),
        p99=_quantile(row, "p99"),
        clients=_clients(row.get("clients")),
    )


def _number(row: dict[str, Any], name: str) -> float:
    value = row.get(name)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _RowError(name, f"expected a number, got {short_repr(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _RowError(name, f"expected a number, got {short_repr(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise _RowError(name, "number too large") from None
    if not math.isfinite(number):
        raise _RowError(name, f"expected a finite number, got {value}")
    return number


def _count(row: dict[str, Any], name: str) -> int:
    value = row.get(name)
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        value = int(value)
    if type(value) is not int or value < 0:
        raise _RowError(name, f"expected a whole number >= 0, got {short_repr(value)}")
    return value


def _quantile(row: dict[str, Any], name: str) -> float:
    value = row.get(name)
    if type(value) is float and 0.0 <= value < _INF:
        return value
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "nan")):
        return math.nan
    number = _number(row, name)
    if number < 0.0:
        raise _RowError(name, f"must be >= 0, got {number}")
    return number


def _time(row: dict[str, Any], name: str) -> float:
    value = row.get(name)
    if type(value) is float and MIN_TIME <= value < MAX_TIME:
        return value  # the common case, without the general parser's checks
    try:
        return parse_history_time(value)
    except ValueError as exc:
        raise _RowError(name, str(exc)) from None


def _text(row: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = row.get(name)
    if type(value) is str and value:
        return value
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _RowError(name, f"expected a non-empty string, got {short_repr(value)}")
    return value


def _clients(value: object) -> dict[str, ClientStats]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise _RowError("clients", "expected an object of client: [requests, errors, enforced]")
    clients: dict[str, ClientStats] = {}
    for client, stats in value.items():
        if type(stats) is list and len(stats) == 3:
            r, e, f = stats
            if type(r) is int and type(e) is int and type(f) is int and min(r, e, f) >= 0:
                clients[client] = ClientStats(r, e, f)
                continue
        raise _RowError("clients", f"{short_repr(client)}: expected [requests, errors, enforced]")
    return clients


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message quotes a bad value
    without echoing a megabyte of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
