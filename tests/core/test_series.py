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
