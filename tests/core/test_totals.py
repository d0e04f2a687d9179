"""SeriesTotals: cumulative per-series counters built from closed points."""

from __future__ import annotations

import doctest
import math

import pytest

from stanch.core import totals as totals_module
from stanch.core.events import RequestEvent
from stanch.core.series import SeriesKey
from stanch.core.totals import OVERFLOW, SeriesTotals
from stanch.core.windows import Point, WindowAggregator

ROUTE = SeriesKey("shop", "GET /products/{id}")
SERVICE = SeriesKey("shop")


def point(
    key: SeriesKey = ROUTE,
    t: float = 0.0,
    *,
    requests: int = 10,
    enforced: int = 0,
    errors: int = 0,
    p50: float = 0.01,
    p95: float = 0.05,
    p99: float = 0.09,
) -> Point:
    return Point(key, t, 1.0, requests, requests - enforced, errors, enforced, p50, p95, p99)


def test_counters_accumulate_across_windows() -> None:
    """requests, served, errors and enforced are sums over every point of the series."""
    totals = SeriesTotals()
    totals.add([point(requests=10, enforced=3, errors=2), point(t=1.0, requests=4, errors=1)])
    t = totals.get(ROUTE)
    assert t is not None
    assert (t.requests, t.served, t.errors, t.enforced, t.windows) == (14, 11, 3, 3, 2)


def test_quantiles_come_from_the_latest_window_even_if_added_out_of_order() -> None:
    """An older point added late does not overwrite the newest window's quantiles."""
    totals = SeriesTotals()
    totals.add([point(t=5.0, p99=0.5), point(t=2.0, p99=0.1)])
    t = totals.get(ROUTE)
    assert t is not None
    assert t.p99 == 0.5
    assert t.last_t_end == 6.0
    assert totals.last_window_end == 6.0


def test_an_idle_window_reports_nan_quantiles() -> None:
    """A window that served nothing leaves NaN quantiles, not the stale ones."""
    totals = SeriesTotals()
    totals.add([point(t=0.0)])
    totals.add([point(t=1.0, requests=0, p50=math.nan, p95=math.nan, p99=math.nan)])
    t = totals.get(ROUTE)
    assert t is not None
    assert math.isnan(t.p50)
    assert t.requests == 10


def test_series_past_the_cap_fold_into_the_overflow_series() -> None:
    """Beyond max_series, new series count into OVERFLOW: the number of series stays bounded."""
    totals = SeriesTotals(max_series=2)
    totals.add(point(SeriesKey("shop", f"GET /r{i}"), requests=1) for i in range(10))
    assert len(totals) == 3  # two admitted series and the overflow series
    overflow = totals.get(OVERFLOW)
    assert overflow is not None
    assert overflow.requests == 8
    assert totals.overflowed == 8
    assert math.isnan(overflow.p99)


def test_snapshot_is_sorted_and_detached() -> None:
    """snapshot() lists every series by key; later adds do not change a taken snapshot."""
    totals = SeriesTotals()
    totals.add([point(ROUTE), point(SERVICE)])
    snap = totals.snapshot()
    totals.add([point(ROUTE, t=1.0)])
    assert [t.key for t in snap] == [SERVICE, ROUTE]
    assert snap[1].requests == 10


def test_totals_of_real_windows_match_the_events() -> None:
    """Fed from a WindowAggregator, route and service totals equal the events sent."""
    windows = WindowAggregator(1.0)
    events = [
        RequestEvent(i * 0.1, "shop", "GET", "/products/{id}", 500 if i % 5 == 0 else 200, 0.02)
        for i in range(30)
    ]
    windows.add_many(events)
    totals = SeriesTotals()
    totals.add(windows.close(3.0))  # windows [0, 1), [1, 2), [2, 3)
    route, service = totals.get(ROUTE), totals.get(SERVICE)
    assert route is not None
    assert service is not None
    assert (route.requests, route.errors) == (30, 6)
    assert service.requests == 30
    assert route.p50 == pytest.approx(0.02, rel=0.02)


def test_max_series_must_be_positive() -> None:
    """A cap below one is refused."""
    with pytest.raises(ValueError, match="max_series"):
        SeriesTotals(max_series=0)


def test_module_doctests_pass() -> None:
    """The example in SeriesTotals' docstring runs as written."""
    result = doctest.testmod(totals_module)
    assert result.attempted > 0
    assert result.failed == 0
