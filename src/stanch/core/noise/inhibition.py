"""Inhibition: when a service-wide alert explains a route's alert of the same kind.

*Inhibition* here means a service-wide alert explains the per-route alerts of the same kind
whose change is no more than ``INHIBIT_FACTOR`` times the service's: when the whole service
lost 80% of its traffic, six routes each losing 80% (or all of it) are one problem, not seven.
A route whose change is far larger than the service's (checkout failing 70% while the service
fails 7%) is the cause, not an echo, and is never inhibited.

The change is measured on a scale where a real outage stays comparable (see :func:`change`):
a route whose traffic fell to zero has lost 100%, not "a billionth of its baseline", and an
error ratio is compared as a ratio, not against each series' own tiny baseline. A route
whose change is *smaller* than the service's is explained as well: it is part of the same
trouble, seen where it is milder, never its cause.
"""

from __future__ import annotations

import math

from stanch.core.alerts import Alert, AlertKind
from stanch.core.series import SERVICE_WIDE

INHIBIT_FACTOR = 2.0

_RATIO_KINDS = frozenset({AlertKind.ERROR_BURST, AlertKind.SLO_BURN})
_RISE_KINDS = frozenset({AlertKind.TRAFFIC_SPIKE, AlertKind.LATENCY_SPIKE})


def relative_change(alert: Alert) -> float:
    """observed / expected, floored so zeros do not divide."""
    return max(alert.observed, 1e-9) / max(alert.expected, 1e-9)


def change(alert: Alert) -> float | None:
    """How far ``alert`` is from normal, on a scale comparable between a route and its
    service; None for kinds with no such scale (alerts from outside, log templates).

    - a traffic drop: the share of the expected traffic lost, clipped to [0, 1], so a route
      down to nothing (observed 0) has lost 1.0, as much as a service down to nothing;
    - a traffic or latency spike: the excess over expected, as a multiple of it;
    - an error burst or SLO burn: the observed error ratio (or burn rate) itself, which is
      bounded and comparable; the baselines (0.01% on one route, 0.1% on another) are not.
    """
    if alert.kind is AlertKind.TRAFFIC_DROP:
        if alert.expected <= 0:
            return None
        return min(1.0, max(0.0, 1.0 - alert.observed / alert.expected))
    if alert.kind in _RISE_KINDS:
        if alert.expected <= 0:
            return None
        return max(0.0, alert.observed / alert.expected - 1.0)
    if alert.kind in _RATIO_KINDS:
        return max(0.0, alert.observed)
    return None


def explains(service_alert: Alert, route_alert: Alert) -> bool:
    """Is ``route_alert`` an echo of ``service_alert`` (same kind, a change no more than
    ``INHIBIT_FACTOR`` times the service's)?"""
    if service_alert.route != SERVICE_WIDE or route_alert.route == SERVICE_WIDE:
        return False
    if service_alert.service != route_alert.service or service_alert.kind != route_alert.kind:
        return False
    route_change, service_change = change(route_alert), change(service_alert)
    if route_change is None or service_change is None:
        # No comparable scale: about the same relative change, in log space.
        gap = abs(math.log(relative_change(route_alert)) - math.log(relative_change(service_alert)))
        return gap <= math.log(INHIBIT_FACTOR)
    if service_change <= 0:
        return False  # a service alert showing no change explains nothing
    return route_change <= INHIBIT_FACTOR * service_change
