"""Recorded points in the store: written idempotently, read back in order, pruned by age."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from stanch.core.series import SeriesKey
from stanch.core.windows import ClientStats, Point
from stanch.evaluation.recorders import StorePointRecorder
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


def test_prune_with_a_limit_deletes_the_oldest_first_and_no_more(store: Store) -> None:
    """A limited prune takes the oldest rows, never more than ``limit``, never one at or after
    ``before``; a count below ``limit`` means nothing older is left."""
    store.write_points([point(key, float(t)) for t in range(10) for key in (SHOP, SEARCH)])
    assert store.prune_points(6.0, limit=5) == 5
    left = [(p.t, p.key.route) for p in store.read_points()]
    assert len(left) == 15
    assert min(left)[0] == 2.0  # 0, 0, 1, 1 and one of the two at 2 went first
    assert store.prune_points(6.0, limit=5) == 5
    assert store.prune_points(6.0, limit=5) == 2  # short: done
    assert store.prune_points(6.0, limit=5) == 0
    assert [p.t for p in store.read_points()] == [float(t) for t in range(6, 10) for _ in "ab"]


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_prune_refuses_a_limit_that_is_not_a_positive_whole_number(
    store: Store, limit: object
) -> None:
    store.write_points([point(SHOP, 1.0)])
    with pytest.raises(ValueError, match="limit must be"):
        store.prune_points(5.0, limit=limit)  # type: ignore[arg-type]
    assert store.points_span() == (1.0, 1.0)


def test_recorder_spreads_a_large_prune_over_writes(open_store: Callable[[], Store]) -> None:
    """A backlog bigger than one batch goes one batch per write, oldest first, until a batch
    comes back short; then writes stop pruning until ``prune_every_s`` of point time passes.
    Nothing at or after the cutoff is touched."""
    store = open_store()
    store.write_points([point(key, float(t)) for t in range(30) for key in (SHOP, SEARCH)])
    calls: list[int] = []
    prune = store.prune_points

    def counted(before: float, *, limit: int | None = None) -> int:
        calls.append(prune(before, limit=limit))
        return calls[-1]

    store.prune_points = counted  # type: ignore[method-assign]
    recorder = StorePointRecorder(store, retention_s=10.0, prune_every_s=100.0, prune_batch=7)
    sizes = []
    for t in range(40, 50):  # cutoff 30: all 60 old rows are due
        before = len(list(store.read_points()))
        recorder.write([point(SHOP, float(t))])
        sizes.append(before + 1 - len(list(store.read_points())))
    assert sizes == [7] * 8 + [4, 0]
    assert calls == [7] * 8 + [4]  # the short batch ended the prune: no call on the last write
    assert [p.t for p in store.read_points()] == [float(t) for t in range(40, 50)]


def test_recorder_batch_outpaces_what_a_write_adds(open_store: Callable[[], Store]) -> None:
    """A write of more points than ``prune_batch`` deletes up to twice as many, so a store
    recording many series still drains its backlog."""
    store = open_store()
    store.write_points([point(SHOP, float(t)) for t in range(100)])
    recorder = StorePointRecorder(store, retention_s=10.0, prune_batch=3)
    keys = [SeriesKey("shop", f"GET /r{i}") for i in range(10)]
    recorder.write([point(key, 200.0) for key in keys])
    assert store.points_span() == (20.0, 200.0)  # 20 deleted, not 3
