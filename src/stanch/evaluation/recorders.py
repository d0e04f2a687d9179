"""Recording history as the engine runs: closed points to a JSONL file or to the store.

Both recorders take ``write(points)`` once per engine step (``Engine(record=...)``) and write
the fields :func:`stanch.evaluation.history.read_points` reads back, so a replay from a file
and from the store (``stanch backtest --db``) agree. The store recorder also owns retention:
it prunes the ``points`` table on domain time, in batches small enough for the event loop.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from stanch.core.windows import Point
from stanch.store import Store
from stanch.store.points import DEFAULT_MAX_CLIENTS, top_clients

#: How long the store keeps points: long enough for ``stanch tune`` to show a 0.5/day budget
#: met (6 days, see ``tune.required_days``), short enough to bound the table (rows per day:
#: series x 86,400 / interval).
DEFAULT_RETENTION_S: Final = 7 * 86_400.0
#: Rows deleted per recorder write while a prune is under way; see :class:`StorePointRecorder`.
PRUNE_BATCH: Final = 5_000


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
    """Appends closed points to a JSONL file that :func:`~stanch.evaluation.history.read_points`
    reads back.

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
