"""Recorded points in the store: written idempotently, read back in order, pruned by age."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from stanch.core.series import SeriesKey
from stanch.core.windows import ClientStats, Point
from stanch.evaluation.history import StorePointRecorder
from stanch.store import Store

SHOP = SeriesKey("shop", "*")
SEARCH = SeriesKey("shop", "GET /search")


def point(key: SeriesKey, t: float, requests: int = 10, **extra: object) -> Point:
    fields: dict[str, object] = {
        "key": key,
        "t": t,
        "interval": 1.0,
        "requests": requests,
        "served": requests,
        "errors": 1,
        "enforced": 0,
        "p50": 0.01,
        "p95": 0.02,
        "p99": 0.03,
    }
    fields.update(extra)
    return Point(**fields)  # type: ignore[arg-type]


def same(a: Point, b: Point) -> bool:
    quantiles = all(
        getattr(a, q) == getattr(b, q) or (math.isnan(getattr(a, q)) and math.isnan(getattr(b, q)))
        for q in ("p50", "p95", "p99")
    )
    return quantiles and (a.key, a.t, a.interval, a.requests, a.served, a.errors, a.enforced) == (
        b.key,
        b.t,
        b.interval,
        b.requests,
        b.served,
        b.errors,
        b.enforced,
    )


def test_points_round_trip_in_time_order(store: Store) -> None:
    """Every field comes back; NaN quantiles (no latency) and the top clients too; rows come
    ordered by time whatever order they were written in."""
    clients = {f"c{i}": ClientStats(20 - i, 1, 0) for i in range(12)}
    written = [
        point(SEARCH, 101.0, requests=0, errors=0, p50=math.nan, p95=math.nan, p99=math.nan),
        point(SHOP, 100.0, requests=300, served=290, enforced=10, clients=clients),
        point(SEARCH, 100.0),
    ]
    assert store.write_points(written) == 3
    back = list(store.read_points())
    assert [(p.t, p.key.route) for p in back] == [
        (100.0, "*"),
        (100.0, "GET /search"),
        (101.0, "GET /search"),
    ]
    assert same(back[0], written[1])
    assert same(back[2], written[0])
    assert back[0].clients == {f"c{i}": ClientStats(20 - i, 1, 0) for i in range(10)}
    assert back[1].clients == {}


def test_writing_a_window_again_changes_nothing(store: Store) -> None:
    """A point of a series and window already stored is kept as first written."""
    store.write_points([point(SHOP, 5.0, requests=1)])
    assert store.write_points([point(SHOP, 5.0, requests=99), point(SHOP, 6.0)]) == 1
    assert [p.requests for p in store.read_points()] == [1, 10]


def test_since_until_select_window_starts_half_open(store: Store) -> None:
    """``since <= ts < until``; the span reports the first and last window stored."""
    store.write_points([point(SHOP, float(t)) for t in range(10)])
    assert [p.t for p in store.read_points(since=3.0, until=6.0)] == [3.0, 4.0, 5.0]
    assert [p.t for p in store.read_points(since=8.0)] == [8.0, 9.0]
    assert store.points_span() == (0.0, 9.0)


def test_prune_deletes_only_older_windows(store: Store) -> None:
    store.write_points([point(SHOP, float(t)) for t in range(10)])
    assert store.prune_points(4.0) == 4
    assert [p.t for p in store.read_points()][:1] == [4.0]
    assert store.prune_points(4.0) == 0


def test_overlong_keys_are_skipped_not_fatal(store: Store) -> None:
    """A route longer than its column would fail the whole batch on PostgreSQL: it is skipped."""
    long = SeriesKey("shop", "GET /" + "x" * 2000)
    # Within the columns' characters, but 2,800 bytes of UTF-8: over PostgreSQL's index limit.
    wide = SeriesKey("\U0001f600" * 200, "GET /" + "\U0001f600" * 495)
    assert store.write_points([point(long, 1.0), point(wide, 1.0), point(SHOP, 1.0)]) == 1
    assert [p.key for p in store.read_points()] == [SHOP]
    assert store.write_points([point(wide, 2.0), point(SHOP, 2.0)]) == 1  # still recording


def test_recorder_prunes_by_point_time(open_store: Callable[[], Store]) -> None:
    """The store recorder keeps ``retention_s`` behind the newest point, checked once per
    ``prune_every_s`` of point time (no wall clock involved)."""
    store = open_store()
    recorder = StorePointRecorder(store, retention_s=100.0, prune_every_s=50.0)
    with recorder:
        for t in range(0, 400, 10):
            recorder.write([point(SHOP, float(t)), point(SEARCH, float(t))])
        recorder.write([])
    kept = sorted({p.t for p in open_store().read_points()})
    assert kept[0] >= 350.0 - 100.0  # last prune at t=350
    assert kept[-1] == 390.0
    with pytest.raises(ValueError, match="closed"):
        recorder.write([point(SHOP, 400.0)])
    with pytest.raises(ValueError, match="positive"):
        StorePointRecorder(store, retention_s=0.0)
