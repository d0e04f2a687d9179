"""Recorded history in the store: closed points per series, kept for a bounded time.

Mixed into :class:`~stanch.store.repository.Store`. The engine writes each step's closed points
(``write_points``, one short transaction, idempotent per series and window); ``stanch backtest
--db`` reads a time range back in order (``read_points``, streamed, so a week of points never
sits in memory); ``prune_points`` deletes what is older than the retention, in bounded batches
if asked. The fields are those ``PointRecorder`` writes to JSONL, so a replay from the store
and from a file agree.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from stanch.core.series import SeriesKey
from stanch.core.windows import ClientStats, Point
from stanch.store.models import ID, ROUTE, PointRow

DEFAULT_MAX_CLIENTS = 10
_READ_BATCH = 5_000
_MAX_SERVICE = ID.length or 200
_MAX_ROUTE = ROUTE.length or 1000


_MAX_KEY_BYTES = 2_000  # service + route in UTF-8, well under PostgreSQL's btree row limit


def _storable(key: SeriesKey) -> bool:
    service, route = key.service, key.route
    if len(service) > _MAX_SERVICE or len(route) > _MAX_ROUTE:
        return False
    return (
        len(service.encode("utf-8", "surrogatepass")) + len(route.encode("utf-8", "surrogatepass"))
        <= _MAX_KEY_BYTES
    )


def top_clients(clients: Mapping[str, ClientStats], limit: int) -> dict[str, list[int]]:
    """The ``limit`` heaviest clients as ``{client: [requests, errors, enforced]}``: enough to
    explain a flood (the detectors name at most three), not a full client log."""
    top = sorted(clients.items(), key=lambda kv: (-kv[1].requests, kv[0]))[:limit]
    return {client: [s.requests, s.errors, s.enforced] for client, s in top}


class PointStore:
    """Points: write, read back in order, prune; see the module docstring."""

    _write: sessionmaker[Session]
    _read: sessionmaker[Session]
    _postgres: bool

    def write_points(
        self, points: Sequence[Point], *, max_clients: int = DEFAULT_MAX_CLIENTS
    ) -> int:
        """Store closed points in one transaction; returns how many rows were new.

        A point of a series and window already stored is left as it was (an engine restarted
        mid-window writes it once). Points whose service or route is longer than its column
        (200 / 1000 characters), or whose key is too long in bytes for an index entry
        (PostgreSQL refuses btree rows over 2,704 bytes: 500 four-byte characters get there),
        are skipped rather than failing the batch, and every other series' history with it.
        """
        rows = [_row(point, max_clients) for point in points if _storable(point.key)]
        if not rows:
            return 0
        insert = postgresql.insert if self._postgres else sqlite.insert
        stmt = (
            insert(PointRow)
            .on_conflict_do_nothing(index_elements=["ts", "service", "route"])
            .returning(PointRow.ts)  # only the rows inserted: executemany's rowcount is not kept
        )
        with self._write.begin() as s:
            return len(s.execute(stmt, rows).all())

    def read_points(
        self, *, since: float | None = None, until: float | None = None
    ) -> Generator[Point, None, None]:
        """Points with ``since <= ts < until`` (window starts; both optional), in time order.

        Streamed in batches inside one read-only transaction, which stays open while the
        caller iterates; close the iterator (or exhaust it) to end it.
        """
        query = select(
            PointRow.ts,
            PointRow.service,
            PointRow.route,
            PointRow.interval,
            PointRow.requests,
            PointRow.errors,
            PointRow.enforced,
            PointRow.p50,
            PointRow.p95,
            PointRow.p99,
            PointRow.clients,
        ).order_by(PointRow.ts, PointRow.service, PointRow.route)
        if since is not None:
            query = query.where(PointRow.ts >= since)
        if until is not None:
            query = query.where(PointRow.ts < until)
        keys: dict[tuple[str, str], SeriesKey] = {}
        with self._read.begin() as s:
            rows = s.execute(query.execution_options(yield_per=_READ_BATCH))
            for ts, service, route, interval, requests, errors, enforced, *rest in rows:
                key = keys.get((service, route))
                if key is None:
                    key = keys[(service, route)] = SeriesKey(service, route)
                p50, p95, p99, clients = rest
                yield Point(
                    key=key,
                    t=ts,
                    interval=interval,
                    requests=requests,
                    served=requests - enforced,
                    errors=errors,
                    enforced=enforced,
                    p50=math.nan if p50 is None else p50,
                    p95=math.nan if p95 is None else p95,
                    p99=math.nan if p99 is None else p99,
                    clients=_clients(clients),
                )

    def points_span(self) -> tuple[float, float] | None:
        """(first, last) window start stored, or None when no point is."""
        with self._read.begin() as s:
            first, last = s.execute(select(func.min(PointRow.ts), func.max(PointRow.ts))).one()
        return None if first is None else (float(first), float(last))

    def prune_points(self, before: float, *, limit: int | None = None) -> int:
        """Delete the points of windows starting before ``before``; returns how many.

        With ``limit``, only the ``limit`` oldest of them go, so one call holds the write lock
        (and, under ``stanch serve``, the event loop) for a bounded time; a result below
        ``limit`` means none is left. The rows are picked by their key, (ts, service, route),
        whose index both SQLite and PostgreSQL walk in ``ts`` order: no table scan, no sort.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValueError(f"limit must be a whole number, got {limit!r}")
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        older = PointRow.ts < before
        if limit is not None:
            key = (PointRow.ts, PointRow.service, PointRow.route)
            oldest = select(*key).where(older).order_by(*key).limit(limit)
            older = tuple_(*key).in_(oldest)
        stmt = delete(PointRow).where(older).execution_options(synchronize_session=False)
        with self._write.begin() as s:
            result = s.execute(stmt)
            return max(int(getattr(result, "rowcount", 0) or 0), 0)


def _row(point: Point, max_clients: int) -> dict[str, Any]:
    return {
        "ts": point.t,
        "service": point.key.service,
        "route": point.key.route,
        "interval": point.interval,
        "requests": point.requests,
        "errors": point.errors,
        "enforced": point.enforced,
        "p50": point.p50 if math.isfinite(point.p50) else None,
        "p95": point.p95 if math.isfinite(point.p95) else None,
        "p99": point.p99 if math.isfinite(point.p99) else None,
        "clients": top_clients(point.clients, max_clients) if point.clients else None,
    }


def _clients(value: Any) -> dict[str, ClientStats]:
    if not value:
        return {}
    return {client: ClientStats(*stats) for client, stats in value.items()}
