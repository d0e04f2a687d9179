"""Inhibition: when a service-wide alert explains a route's alert of the same kind.

*Inhibition* here means a service-wide alert explains the per-route alerts of the same kind
whose relative change is about the same as the service's (within ``INHIBIT_FACTOR``): when the
whole service lost 80% of its traffic, six routes each losing 80% are one problem, not seven.
A route whose change is far larger than the service's (checkout failing 70% while the service
fails 7%) is the cause, not an echo, and is never inhibited.
"""

from __future__ import annotations

import math

from stanch.core.alerts import Alert
from stanch.core.series import SERVICE_WIDE

INHIBIT_FACTOR = 2.0


def relative_change(alert: Alert) -> float:
    """observed / expected, floored so zeros do not divide."""
    return max(alert.observed, 1e-9) / max(alert.expected, 1e-9)


def explains(service_alert: Alert, route_alert: Alert) -> bool:
    """Is ``route_alert`` an echo of ``service_alert`` (same kind, about the same change)?"""
    if service_alert.route != SERVICE_WIDE or route_alert.route == SERVICE_WIDE:
        return False
    if service_alert.service != route_alert.service or service_alert.kind != route_alert.kind:
        return False
    gap = abs(math.log(relative_change(route_alert)) - math.log(relative_change(service_alert)))
    return gap <= math.log(INHIBIT_FACTOR)
