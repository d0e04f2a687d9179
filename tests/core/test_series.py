"""Series identity and the cardinality guard."""

from __future__ import annotations

import pytest

from stanch.core.series import (
    OVERFLOW_ROUTE,
    SERVICE_WIDE,
    CardinalityGuard,
    SeriesKey,
    route_key,
)


def test_route_key_uppercases_the_method() -> None:
    """route_key is the canonical 'METHOD /template' spelling used everywhere."""
    assert route_key("post", "/checkout") == "POST /checkout"


def test_series_key_service_wide_by_default() -> None:
    """A key without a route is the service-wide series and prints as such."""
    key = SeriesKey("shop")
    assert key.is_service_wide
    assert key.route == SERVICE_WIDE
    assert str(key) == "shop *"
    assert not SeriesKey("shop", "GET /x").is_service_wide


def test_guard_refuses_a_cap_below_two() -> None:
    """A cap under 2 leaves no room for a real series next to the overflow one."""
    with pytest.raises(ValueError, match="at least 2"):
        CardinalityGuard(1)


def test_guard_admits_up_to_the_cap_then_folds_newcomers() -> None:
    """Series past max_series share the service's overflow series; overflowed counts events."""
    guard = CardinalityGuard(max_series=2)
    a, b, c = (SeriesKey("shop", f"GET /{n}") for n in "abc")
    assert guard.admit(a) == a
    assert guard.admit(b) == b
    assert guard.admit(c) == SeriesKey("shop", OVERFLOW_ROUTE)
    assert guard.admit(c) == SeriesKey("shop", OVERFLOW_ROUTE)
    assert guard.overflowed == 2
    # Series admitted before the cap stay themselves.
    assert guard.admit(a) == a
    assert guard.overflowed == 2


def test_guard_overflow_is_per_service_and_bounded() -> None:
    """Overflow keys are per service; 1000 newcomers add only one key per service."""
    guard = CardinalityGuard(max_series=3)
    for i in range(1000):
        guard.admit(SeriesKey("shop", f"GET /items/{i}"))
        guard.admit(SeriesKey("cart", f"GET /items/{i}"))
    assert len(guard) == 3 + 2  # the admitted three plus one overflow series per service
    assert guard.admit(SeriesKey("cart", "GET /new")) == SeriesKey("cart", OVERFLOW_ROUTE)


def test_one_services_route_explosion_folds_only_its_own_routes() -> None:
    """The audit case: 'noisy' sends 600 raw paths; billing's route, new after that, keeps its
    own series, and only noisy's excess is folded (into noisy's own overflow series)."""
    guard = CardinalityGuard()  # the defaults: 500 in all, 200 per service
    for i in range(600):
        guard.admit(SeriesKey("noisy", f"GET /item/{i}"))
    invoice = SeriesKey("billing", "POST /invoice")
    assert guard.admit(invoice) == invoice
    assert guard.admit(SeriesKey("noisy", "GET /item/0")) == SeriesKey("noisy", "GET /item/0")
    assert guard.admit(SeriesKey("noisy", "GET /x")) == SeriesKey("noisy", OVERFLOW_ROUTE)
    assert guard.folded == {"noisy": 401}
    assert guard.overflowed == 401
    assert len(guard) == 200 + 1 + 1  # noisy's routes, its overflow series, billing's route
    notices = guard.take_notices()
    assert len(notices) == 1  # once per service, on its first fold
    assert "'noisy'" in notices[0]
    assert "max_routes_per_service" in notices[0]
    assert guard.take_notices() == []  # drained


def test_the_global_cap_still_bounds_all_services_together() -> None:
    """Many services each under their own cap still stop at max_series route series; past it,
    every service folds into its own overflow series and is counted and warned once."""
    guard = CardinalityGuard(max_series=10, max_routes_per_service=4)
    for service in ("a", "b", "c", "d"):
        for i in range(100):
            guard.admit(SeriesKey(service, f"GET /{i}"))
    routes = [k for k in guard._admitted if k.route != OVERFLOW_ROUTE]
    assert len(routes) == 10
    assert {k.service for k in routes} == {"a", "b", "c"}  # 4 + 4 + 2
    assert len(guard) == 10 + 4  # plus one overflow series per service, no more
    assert guard.folded == {"a": 96, "b": 96, "c": 98, "d": 100}
    assert guard.overflowed == sum(guard.folded.values())


def test_the_service_wide_series_is_never_folded() -> None:
    """A service whose routes are all folded still has its service-wide series."""
    guard = CardinalityGuard(max_series=2, max_routes_per_service=1)
    guard.admit(SeriesKey("a", "GET /1"))
    guard.admit(SeriesKey("b", "GET /1"))
    assert guard.admit(SeriesKey("c", "GET /1")) == SeriesKey("c", OVERFLOW_ROUTE)
    assert guard.admit(SeriesKey("c")) == SeriesKey("c")
    assert guard.folded == {"c": 1}


def test_guard_validates_the_per_service_cap_and_clamps_it_to_the_global_one() -> None:
    with pytest.raises(ValueError, match="max_routes_per_service"):
        CardinalityGuard(10, 0)
    assert CardinalityGuard(10, 50).max_routes_per_service == 10
