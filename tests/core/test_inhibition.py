"""When a service-wide alert explains a route's alert: compared on scales that survive a real
outage (a route at zero, error ratios against tiny baselines)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stanch.core.alerts import Alert, AlertKind
from stanch.core.noise import change, explains

from .factories import make_alert


def _alert(kind: AlertKind, route: str, observed: float, expected: float) -> Alert:
    return replace(make_alert(kind, route=route), observed=observed, expected=expected)


@pytest.mark.parametrize(
    ("kind", "service", "route", "explained"),
    [
        # The audit's outage: the whole service down 98%, a route down to nothing. Its
        # observed/expected (a floored 1e-9) was "50 million times" the service's ratio.
        (AlertKind.TRAFFIC_DROP, (2.0, 120.0), (0.0, 20.0), True),
        (AlertKind.TRAFFIC_DROP, (0.0, 120.0), (0.0, 20.0), True),
        (AlertKind.TRAFFIC_DROP, (24.0, 120.0), (2.0, 20.0), True),  # -80% and -90%
        (AlertKind.TRAFFIC_DROP, (24.0, 120.0), (10.0, 20.0), True),  # milder: part of it
        # The service lost 10%; one route lost everything: it is the cause.
        (AlertKind.TRAFFIC_DROP, (108.0, 120.0), (0.0, 20.0), False),
        # Checkout failing 70% while the service fails 7%: the cause, never an echo.
        (AlertKind.ERROR_BURST, (0.07, 0.001), (0.70, 0.001), False),
        # Every route failing about half: the baselines (0.01% vs 0.1%) do not matter.
        (AlertKind.ERROR_BURST, (0.50, 0.001), (0.55, 0.0001), True),
        (AlertKind.ERROR_BURST, (0.50, 0.001), (1.0, 0.0001), True),
        (AlertKind.SLO_BURN, (20.0, 14.4), (30.0, 6.0), True),
        (AlertKind.SLO_BURN, (20.0, 14.4), (500.0, 14.4), False),
        (AlertKind.TRAFFIC_SPIKE, (240.0, 120.0), (45.0, 20.0), True),  # +100% and +125%
        (AlertKind.TRAFFIC_SPIKE, (240.0, 120.0), (200.0, 20.0), False),  # one route x10
        (AlertKind.LATENCY_SPIKE, (0.4, 0.1), (0.5, 0.1), True),
        (AlertKind.LATENCY_SPIKE, (0.2, 0.1), (3.0, 0.1), False),
    ],
)
def test_explains_compares_bounded_changes(
    kind: AlertKind,
    service: tuple[float, float],
    route: tuple[float, float],
    explained: bool,
) -> None:
    service_alert = _alert(kind, "*", *service)
    route_alert = _alert(kind, "GET /a", *route)
    assert explains(service_alert, route_alert) is explained


def test_only_a_service_wide_alert_of_the_same_kind_explains() -> None:
    service_alert = _alert(AlertKind.TRAFFIC_DROP, "*", 0.0, 120.0)
    route_alert = _alert(AlertKind.TRAFFIC_DROP, "GET /a", 0.0, 20.0)
    assert not explains(route_alert, route_alert)
    assert not explains(service_alert, replace(route_alert, kind=AlertKind.ERROR_BURST))
    assert not explains(service_alert, replace(route_alert, service="other"))
    assert not explains(service_alert, service_alert)


def test_a_drop_is_clipped_to_all_of_the_traffic() -> None:
    """A drop is the share lost (0..1); a drop to zero, or a corrupt negative, is all of it."""
    assert change(_alert(AlertKind.TRAFFIC_DROP, "*", 0.0, 20.0)) == 1.0
    assert change(_alert(AlertKind.TRAFFIC_DROP, "*", -3.0, 20.0)) == 1.0
    assert change(_alert(AlertKind.TRAFFIC_DROP, "*", 15.0, 20.0)) == pytest.approx(0.25)
    assert change(_alert(AlertKind.TRAFFIC_DROP, "*", 5.0, 0.0)) is None


def test_outside_alerts_keep_the_relative_rule() -> None:
    """Alerts from outside have no known scale: about the same observed/expected explains."""
    service_alert = _alert(AlertKind.EXTERNAL, "*", 10.0, 1.0)
    assert explains(service_alert, _alert(AlertKind.EXTERNAL, "GET /a", 12.0, 1.0))
    assert not explains(service_alert, _alert(AlertKind.EXTERNAL, "GET /a", 100.0, 1.0))
