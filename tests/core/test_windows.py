"""WindowAggregator: request events bucketed into per-series points."""

from __future__ import annotations

import math
import random

import pytest

from stanch.core.events import RequestEvent
from stanch.core.series import OVERFLOW_ROUTE, CardinalityGuard, SeriesKey
from stanch.core.windows import (
    MAX_CLIENTS_PER_BUCKET,
    OTHER_CLIENTS,
    ClientStats,
    Point,
    WindowAggregator,
)

ROUTE = SeriesKey("shop", "GET /products/{id}")
SERVICE = SeriesKey("shop")


def ev(
    ts: float,
    *,
    status: int = 200,
    latency: float = 0.05,
    route: str = "/products/{id}",
    method: str = "GET",
    client: str = "",
    enforced: str = "",
    service: str = "shop",
) -> RequestEvent:
    return RequestEvent(
        ts=ts,
        service=service,
        method=method,
        route=route,
        status=status,
        latency_s=latency,
        client=client,
        enforced=enforced,
    )


def by_key(points: list[Point]) -> dict[tuple[SeriesKey, float], Point]:
    return {(p.key, p.t): p for p in points}


def test_interval_must_be_positive() -> None:
    """A zero or negative interval is refused."""
    with pytest.raises(ValueError, match="positive"):
        WindowAggregator(interval=0)


def test_events_land_in_route_and_service_series() -> None:
    """Each event counts once in its route series and once in its service series."""
    agg = WindowAggregator(interval=1.0)
    agg.add_many([ev(10.1), ev(10.5), ev(10.9, route="/cart", method="post")])
    points = by_key(agg.close(11.0))
    assert points[(ROUTE, 10.0)].requests == 2
    assert points[(SeriesKey("shop", "POST /cart"), 10.0)].requests == 1
    assert points[(SERVICE, 10.0)].requests == 3
    assert len(points) == 3


def test_bucketing_by_interval_boundaries() -> None:
    """floor(ts / interval) picks the bucket; a window closes only once now reaches its end."""
    agg = WindowAggregator(interval=5.0)
    agg.add_many([ev(0.0), ev(4.999), ev(5.0), ev(9.9), ev(12.0)])
    assert agg.close(4.9) == []
    first = agg.close(5.0)
    assert {(p.t, p.requests) for p in first if p.key == SERVICE} == {(0.0, 2)}
    assert all(p.interval == 5.0 and p.t_end == 5.0 for p in first)
    rest = agg.close(15.0)
    assert [(p.t, p.requests) for p in rest if p.key == SERVICE] == [(5.0, 2), (10.0, 1)]


def test_close_returns_windows_oldest_first_and_sorted_keys() -> None:
    """Points come window by window, oldest first, series in key order within a window."""
    agg = WindowAggregator()
    agg.add_many([ev(2.5, route="/b"), ev(1.5, route="/a"), ev(1.2, route="/b")])
    points = agg.close(3.0)
    assert [p.t for p in points] == sorted(p.t for p in points)
    window1 = [p.key for p in points if p.t == 1.0]
    assert window1 == sorted(window1)


def test_known_series_get_empty_points_when_silent() -> None:
    """A known series with no traffic in a window still emits a point with zero requests."""
    agg = WindowAggregator()
    agg.add(ev(1.5))
    agg.close(2.0)
    points = by_key(agg.close(4.0))
    for t in (2.0, 3.0):
        for key in (ROUTE, SERVICE):
            point = points[(key, t)]
            assert point.requests == point.served == point.errors == 0
            assert point.rate == 0.0
            assert point.error_ratio == 0.0
            assert math.isnan(point.p95)
    assert agg.known_series == frozenset({ROUTE, SERVICE})


def test_close_before_any_event_emits_nothing() -> None:
    """With no events ever seen there is no series to report on."""
    agg = WindowAggregator()
    assert agg.close(100.0) == []
    assert agg.known_series == frozenset()


def test_late_events_are_counted_and_folded_into_the_oldest_open_window() -> None:
    """An event for a window already closed is counted in `late` and lands in the oldest window
    still open: history is never reopened, and no accepted event goes uncounted."""
    agg = WindowAggregator()
    agg.add(ev(1.5))
    assert len(agg.close(2.0)) == 2
    agg.add(ev(1.9))
    agg.add(ev(0.1))
    assert agg.late == 2
    points = by_key(agg.close(3.0))
    assert points[(SERVICE, 2.0)].requests == 2
    assert (SERVICE, 1.0) not in points


def test_event_in_the_open_window_is_not_late() -> None:
    """An event for the window still open after a close is counted normally."""
    agg = WindowAggregator()
    agg.add(ev(1.5))
    agg.close(2.5)
    agg.add(ev(2.7))
    assert agg.late == 0
    assert by_key(agg.close(3.0))[(SERVICE, 2.0)].requests == 1


def test_enforced_requests_are_offered_load_but_not_errors_or_latency() -> None:
    """Stanch's own 503s count in requests/enforced, not in errors, served or latency."""
    agg = WindowAggregator()
    agg.add(ev(1.1, status=200, latency=0.01))
    agg.add(ev(1.2, status=500, latency=0.02))
    for i in range(8):
        agg.add(ev(1.3 + i / 100, status=503, latency=5.0, enforced="breaker"))
    point = by_key(agg.close(2.0))[(ROUTE, 1.0)]
    assert point.requests == 10
    assert point.enforced == 8
    assert point.served == 2
    assert point.errors == 1
    assert point.error_ratio == pytest.approx(0.5)
    # The 5 s latencies of enforced answers would dominate p99 if they were counted.
    assert point.p99 < 0.1


def test_all_enforced_window_has_no_latency() -> None:
    """A window where Stanch answered everything reports NaN quantiles and zero served."""
    agg = WindowAggregator()
    agg.add(ev(1.1, status=503, enforced="shed"))
    point = by_key(agg.close(2.0))[(ROUTE, 1.0)]
    assert point.served == 0
    assert point.error_ratio == 0.0
    assert math.isnan(point.p50)


def test_client_stats_split_requests_errors_and_enforced() -> None:
    """Per-client stats count requests, app errors and Stanch-answered requests separately."""
    agg = WindowAggregator()
    agg.add(ev(1.0, client="acme"))
    agg.add(ev(1.1, client="acme", status=500))
    agg.add(ev(1.2, client="acme", status=429, enforced="throttle"))
    agg.add(ev(1.3, client="acme", status=503, enforced="breaker"))
    agg.add(ev(1.4, client="globex"))
    agg.add(ev(1.5))  # anonymous: no client entry
    point = by_key(agg.close(2.0))[(ROUTE, 1.0)]
    assert point.clients == {
        "acme": ClientStats(requests=4, errors=1, enforced=2),
        "globex": ClientStats(requests=1, errors=0, enforced=0),
    }


def test_per_bucket_client_cap_folds_the_rest_into_other() -> None:
    """Past MAX_CLIENTS_PER_BUCKET distinct clients, newcomers share one '__other__' entry."""
    agg = WindowAggregator()
    extra = 44
    n = MAX_CLIENTS_PER_BUCKET + extra
    for i in range(n):
        agg.add(ev(1.0 + i / (2 * n), client=f"c{i}", status=500 if i % 2 else 200))
    agg.add(ev(1.9, client="c0"))  # a known client keeps its own entry after the cap
    point = by_key(agg.close(2.0))[(ROUTE, 1.0)]
    named = {c: s for c, s in point.clients.items() if c != OTHER_CLIENTS}
    assert len(named) == MAX_CLIENTS_PER_BUCKET
    assert point.clients[OTHER_CLIENTS].requests == extra
    assert point.clients["c0"].requests == 2
    assert sum(s.requests for s in point.clients.values()) == n + 1
    assert sum(s.errors for s in point.clients.values()) == point.errors


def test_client_cap_is_per_bucket() -> None:
    """The cap resets with each window: a new window tracks its own clients by name."""
    agg = WindowAggregator()
    for i in range(MAX_CLIENTS_PER_BUCKET + 1):
        agg.add(ev(1.0, client=f"c{i}"))
    agg.add(ev(2.0, client=f"c{MAX_CLIENTS_PER_BUCKET}"))
    points = by_key(agg.close(3.0))
    assert f"c{MAX_CLIENTS_PER_BUCKET}" not in points[(ROUTE, 1.0)].clients
    assert points[(ROUTE, 2.0)].clients == {f"c{MAX_CLIENTS_PER_BUCKET}": ClientStats(1, 0, 0)}


@pytest.mark.parametrize(("q", "attr"), [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")])
def test_quantiles_within_sketch_accuracy(q: float, attr: str) -> None:
    """p50/p95/p99 are within DDSketch's 1% relative accuracy (+ rank slack) of the truth."""
    latencies = [i / 1000 for i in range(1, 1001)]
    random.Random(7).shuffle(latencies)
    agg = WindowAggregator()
    for i, latency in enumerate(latencies):
        agg.add(ev(1.0 + i / 2000, latency=latency))
    point = by_key(agg.close(2.0))[(ROUTE, 1.0)]
    truth = sorted(latencies)[round(q * (len(latencies) - 1))]
    assert getattr(point, attr) == pytest.approx(truth, rel=0.02)


def test_quantiles_on_a_bimodal_latency_set() -> None:
    """A 10% slow tail shows in p95/p99 and not in p50."""
    agg = WindowAggregator()
    for i in range(900):
        agg.add(ev(1.0 + i / 2000, latency=0.020))
    for i in range(100):
        agg.add(ev(1.5 + i / 2000, latency=2.0))
    point = by_key(agg.close(2.0))[(SERVICE, 1.0)]
    assert point.p50 == pytest.approx(0.020, rel=0.02)
    assert point.p95 == pytest.approx(2.0, rel=0.02)
    assert point.p99 == pytest.approx(2.0, rel=0.02)


def test_zero_latency_is_measured_not_dropped() -> None:
    """Zero latencies are floored to 1 µs so the sketch still counts them."""
    agg = WindowAggregator()
    agg.add(ev(1.0, latency=0.0))
    point = by_key(agg.close(2.0))[(ROUTE, 1.0)]
    assert 0 < point.p50 < 1e-5


def test_aggregator_keeps_the_guard_it_is_given() -> None:
    """A fresh (empty) CardinalityGuard passed in is the one the aggregator uses."""
    guard = CardinalityGuard(max_series=2)
    agg = WindowAggregator(guard=guard)
    assert agg.guard is guard


def test_cardinality_guard_folds_routes_into_overflow_series() -> None:
    """Routes past the guard's cap are measured in the overflow series; the service total holds."""
    agg = WindowAggregator(guard=CardinalityGuard(max_series=2))
    for i in range(5):
        agg.add(ev(1.0 + i / 10, route=f"/r{i}"))
    points = by_key(agg.close(2.0))
    overflow = SeriesKey("shop", OVERFLOW_ROUTE)
    assert points[(overflow, 1.0)].requests == 3
    assert points[(SeriesKey("shop", "GET /r0"), 1.0)].requests == 1
    assert points[(SERVICE, 1.0)].requests == 5
    assert agg.guard.overflowed == 3
    assert len(agg.known_series) == 4  # two routes, overflow, service


def test_services_are_separate_series() -> None:
    """Two services never share a series, route or service-wide."""
    agg = WindowAggregator()
    agg.add(ev(1.0, service="shop"))
    agg.add(ev(1.0, service="cart"))
    points = by_key(agg.close(2.0))
    assert points[(SeriesKey("shop"), 1.0)].requests == 1
    assert points[(SeriesKey("cart"), 1.0)].requests == 1


def test_point_rate_is_per_second() -> None:
    """Point.rate divides offered requests by the interval."""
    agg = WindowAggregator(interval=10.0)
    for i in range(30):
        agg.add(ev(i / 10))
    point = by_key(agg.close(10.0))[(SERVICE, 0.0)]
    assert point.rate == pytest.approx(3.0)


def test_overflow_series_with_a_guard_already_in_use() -> None:
    """A guard that already admitted series folds later routes into the overflow series."""
    guard = CardinalityGuard(max_series=2)
    guard.admit(SeriesKey("shop", "GET /r0"))
    agg = WindowAggregator(guard=guard)
    assert agg.guard is guard
    for i in range(5):
        agg.add(ev(1.0 + i / 10, route=f"/r{i}"))
    points = by_key(agg.close(2.0))
    overflow = SeriesKey("shop", OVERFLOW_ROUTE)
    assert points[(overflow, 1.0)].requests == 3
    assert points[(SeriesKey("shop", "GET /r1"), 1.0)].requests == 1
    assert points[(SERVICE, 1.0)].requests == 5
    assert guard.overflowed == 3
