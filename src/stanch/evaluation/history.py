"""Recorded history for backtests: request events, metric points, and labeled incidents.

Three file formats, all read as streams (one row in memory at a time):

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
  a signal, and a missing row is not silence. :class:`PointRecorder` writes this format;
  :class:`StorePointRecorder` writes the same fields to the store's ``points`` table.
- **Labels**, YAML or JSON: a list of labeled incidents::

      - service: shop
        route: "GET /search"      # optional glob on "METHOD /template"; missing = any route
        kind: traffic_spike       # optional AlertKind value; missing = any kind
        start: 2026-11-25T09:18:00Z   # ISO-8601 (naive = UTC) or epoch seconds
        end: 1764062520
        name: search-flood        # optional, shown in reports

Every bad row raises :class:`~stanch.core.errors.ValidationError` saying
``file:line: field: problem``; nothing else escapes a reader, whatever the bytes.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

import yaml

from stanch.core.alerts import AlertKind
from stanch.core.errors import ValidationError
from stanch.core.events import RequestEvent
from stanch.core.series import SERVICE_WIDE, SeriesKey
from stanch.core.windows import ClientStats, Point
from stanch.store import Store
from stanch.store.points import DEFAULT_MAX_CLIENTS, top_clients

MAX_LINE_BYTES: Final = 1024 * 1024
MAX_LABEL_BYTES: Final = 1024 * 1024
#: How long the store keeps points: long enough for ``stanch tune`` to show a 0.5/day budget
#: met (6 days, see ``tune.required_days``), short enough to bound the table (rows per day:
#: series x 86,400 / interval).
DEFAULT_RETENTION_S: Final = 7 * 86_400.0
#: Rows deleted per recorder write while a prune is under way; see :class:`StorePointRecorder`.
PRUNE_BATCH: Final = 5_000
_EVENT_FIELDS: Final = ("ts", "service", "method", "route", "status", "latency_s")
_POINT_FIELDS: Final = ("ts", "service", "route", "requests", "errors", "p50", "p95", "p99")
_LABEL_FIELDS: Final = frozenset({"service", "route", "kind", "start", "end", "name"})
_POINT_KEYS: Final = frozenset(_POINT_FIELDS)
_DECODER: Final = json.JSONDecoder()
_INF: Final = math.inf


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
            raise ValueError(f"time out of range: {_short(value)}") from None
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
        raise ValueError(f"expected epoch seconds or an ISO-8601 time, got {_short(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"time must be finite, got {value!r}")
    return seconds


# --------------------------------------------------------------------------- readers


def read_events(path: str | Path) -> Iterator[RequestEvent]:
    """Request events from a JSONL file, in file order."""
    for lineno, row in _jsonl_rows(path):
        try:
            yield _event(row)
        except _RowError as exc:
            raise ValidationError(f"{path}:{lineno}: {exc.field}: {exc.message}") from None


def read_points(path: str | Path, *, interval: float = 1.0) -> Iterator[Point]:
    """Metric points from a CSV (``.csv``) or JSONL file, in file order.

    ``interval`` is the window length of rows that carry no ``interval`` of their own.
    """
    keys: dict[tuple[str, str], SeriesKey] = {}
    rows = _csv_rows(path) if str(path).lower().endswith(".csv") else _jsonl_rows(path)
    for lineno, row in rows:
        try:
            yield _point(row, interval, keys)
        except _RowError as exc:
            raise ValidationError(f"{path}:{lineno}: {exc.field}: {exc.message}") from None


def sniff_format(path: str | Path) -> str:
    """``"points"`` for CSV files and JSONL whose first row has ``requests``, else ``"events"``."""
    if str(path).lower().endswith(".csv"):
        return "points"
    for _, row in _jsonl_rows(path):
        return "points" if "requests" in row else "events"
    return "events"


def _open(path: str | Path) -> IO[bytes]:
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise ValidationError(f"{path}:1: (file): cannot read: {exc.strerror or exc}") from None


def _jsonl_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    decode = _DECODER.decode  # json.loads minus its per-call set-up: a third of a row's cost
    with _open(path) as fh:
        lineno = 0
        while True:
            try:
                raw = fh.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                raise ValidationError(f"{path}:{lineno + 1}: (file): {exc}") from None
            if not raw:
                return
            lineno += 1
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


def _csv_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(path) as fh:
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
                yield reader.line_num, dict(zip(header, cells, strict=True))
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
        and -_INF < ts < _INF
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
        raise _RowError("status", f"expected an HTTP status 100..599, got {_short(status)}")
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
            raise _RowError("route", f"expected 'METHOD /template' or '*', got {_short(route)}")
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
            raise _RowError(name, f"expected a number, got {_short(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _RowError(name, f"expected a number, got {_short(value)}")
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
        raise _RowError(name, f"expected a whole number >= 0, got {_short(value)}")
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
    if type(value) is float and math.isfinite(value):
        return value  # the common case, without the general parser's checks
    try:
        return parse_time(value)
    except ValueError as exc:
        raise _RowError(name, str(exc)) from None


def _text(row: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = row.get(name)
    if type(value) is str and value:
        return value
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _RowError(name, f"expected a non-empty string, got {_short(value)}")
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
        raise _RowError("clients", f"{_short(client)}: expected [requests, errors, enforced]")
    return clients


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- recording


class _Recorder:
    """``with recorder:`` closes it, whichever store it writes to."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PointRecorder(_Recorder):
    """Appends closed points to a JSONL file that :func:`read_points` reads back.

    Each :meth:`write` is flushed, so a crash loses at most the points of one step. Only the
    ``max_clients`` heaviest clients of a point are kept: enough to explain a flood (the
    detectors name at most three), not a full client log.
    """

    def __init__(self, path: str | Path, *, max_clients: int = 10) -> None:
        self.path = Path(path)
        self.max_clients = max_clients
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")

    def write(self, points: list[Point]) -> None:
        if self._fh is None:
            raise ValueError(f"recorder for {self.path} is closed")
        if not points:
            return
        lines = [json.dumps(self._row(p), separators=(",", ":")) + "\n" for p in points]
        self._fh.write("".join(lines))
        self._fh.flush()

    def _row(self, point: Point) -> dict[str, Any]:
        row: dict[str, Any] = {
            "ts": point.t,
            "service": point.key.service,
            "route": point.key.route,
            "interval": point.interval,
            "requests": point.requests,
            "errors": point.errors,
            "p50": _finite_or_none(point.p50),
            "p95": _finite_or_none(point.p95),
            "p99": _finite_or_none(point.p99),
        }
        if point.enforced:
            row["enforced"] = point.enforced
        if point.clients:
            row["clients"] = top_clients(point.clients, self.max_clients)
        return row

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class StorePointRecorder(_Recorder):
    """:class:`PointRecorder`'s interface over the store's ``points`` table, with retention.

    ``write(points)`` is one short transaction (``Store.write_points``: an INSERT of one row
    per point, idempotent per series and window). Retention is enforced on domain time rather
    than the wall clock: once every ``prune_every_s`` of point time, points older than
    ``retention_s`` behind the newest written become due for deletion. ``stanch serve`` calls
    ``write`` inside each engine step, on its event loop, and one DELETE of an hour of 500
    series (1.8 M rows) holds that loop for about 2 s. So the backlog is deleted in batches,
    one per ``write``, until a batch comes back short. A batch is ``prune_batch`` rows, or
    twice the points written if that is more, so deleting always outpaces recording.

    ``PRUNE_BATCH`` (5,000) was measured on 2 M points: a batch takes about 6 ms on SQLite
    and 18 ms on a local PostgreSQL, growing linearly (10,000 take 11 and 36 ms). That keeps a
    write within a small multiple of its own insert, and still clears 1.8 M rows in 360 writes
    (six minutes of one-second steps; retention is counted in days). The store stays open: its
    owner closes it.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        retention_s: float = DEFAULT_RETENTION_S,
        prune_every_s: float = 3600.0,
        prune_batch: int = PRUNE_BATCH,
    ) -> None:
        if retention_s <= 0 or prune_every_s <= 0 or prune_batch <= 0:
            raise ValueError("retention_s, prune_every_s and prune_batch must be positive")
        self.store = store
        self.max_clients = max_clients
        self.retention_s = retention_s
        self.prune_every_s = prune_every_s
        self.prune_batch = prune_batch
        self._pruned_at = -math.inf
        self._prune_before: float | None = None  # a prune under way: delete older than this
        self._closed = False

    def write(self, points: list[Point]) -> None:
        if self._closed:
            raise ValueError("store recorder is closed")
        if not points:
            return
        self.store.write_points(points, max_clients=self.max_clients)
        newest = max(point.t for point in points)
        if newest - self._pruned_at >= self.prune_every_s:
            self._prune_before = newest - self.retention_s
            self._pruned_at = newest
        if self._prune_before is not None:
            limit = max(self.prune_batch, 2 * len(points))
            if self.store.prune_points(self._prune_before, limit=limit) < limit:
                self._prune_before = None

    def close(self) -> None:
        self._closed = True


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True, slots=True)
class Label:
    """One labeled incident: on ``service`` (``route`` glob, ``kind``; None = any) in
    ``[start, end]``."""

    service: str
    start: float
    end: float
    route: str | None = None
    kind: AlertKind | None = None
    name: str = ""

    def covers(self, service: str, route: str, kind: AlertKind) -> bool:
        """Whether an alert on this series and kind is about this incident (time aside).

        A service-wide alert (route ``"*"``) is about every route of its service.
        """
        if service != self.service or (self.kind is not None and kind is not self.kind):
            return False
        return route == SERVICE_WIDE or self.route is None or fnmatchcase(route, self.route)

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        when = datetime.fromtimestamp(self.start, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.service} {self.route or '*'} {self.kind or 'any'} @ {when}"


def load_labels(path: str | Path) -> list[Label]:
    """Labeled incidents from a YAML or JSON file; ValidationError names file:line: field."""
    with _open(path) as fh:
        raw = fh.read(MAX_LABEL_BYTES + 1)
    if len(raw) > MAX_LABEL_BYTES:
        raise ValidationError(f"{path}:1: (file): larger than {MAX_LABEL_BYTES} bytes")
    loader: yaml.SafeLoader | None = None
    try:
        text = raw.decode("utf-8-sig")
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}:1: (file): not valid UTF-8") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ValidationError(f"{path}:{line}: (yaml): {exc.problem or 'invalid'}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ValidationError(f"{path}:1: (yaml): {str(exc)[:120]}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None or data is None:
        return []
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise ValidationError(f"{path}:1: (root): expected a list of labeled incidents")
    return [
        _label(item, node, f"{path}", i)
        for i, (item, node) in enumerate(zip(data, root.value, strict=True))
    ]


def _label(item: object, node: yaml.Node, path: str, index: int) -> Label:
    line = node.start_mark.line + 1

    def fail(name: str, message: str) -> ValidationError:
        at = line
        if isinstance(node, yaml.MappingNode):
            at = next((k.start_mark.line + 1 for k, _ in node.value if k.value == name), line)
        return ValidationError(f"{path}:{at}: [{index}].{name}: {message}")

    if not isinstance(item, dict):
        raise fail("(item)", "expected a mapping with service, start and end")
    for name in item:
        if name not in _LABEL_FIELDS:
            raise fail(
                str(name), f"unknown field; expected one of {', '.join(sorted(_LABEL_FIELDS))}"
            )
    for name in ("service", "start", "end"):
        if name not in item:
            raise fail(name, "required field missing")
    times: dict[str, float] = {}
    for name in ("start", "end"):
        try:
            times[name] = parse_time(item[name])
        except (ValueError, OverflowError) as exc:
            raise fail(name, str(exc)) from None
    if times["end"] < times["start"]:
        raise fail("end", "is before start")
    strings: dict[str, str | None] = {}
    for name in ("service", "route", "name"):
        value = item.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise fail(name, f"expected a non-empty string, got {_short(value)}")
        strings[name] = value
    kind: AlertKind | None = None
    if item.get("kind") is not None:
        try:
            kind = AlertKind(item["kind"])
        except ValueError:
            raise fail("kind", f"expected one of {', '.join(AlertKind)}") from None
    return Label(
        service=strings["service"] or "",
        start=times["start"],
        end=times["end"],
        route=strings["route"],
        kind=kind,
        name=strings["name"] or "",
    )
