"""Correlation: which incident does a new alert belong to?

Alerts join an open incident of the same service when they touch the same components (the same
route, a client already implicated) or when one is the service-wide view of the other's kind
(a service error burst caused by one route's burst), and the incident was active recently.
A resolved incident whose own alert fires again soon is reopened rather than duplicated: a
flapping condition is one incident, not ten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stanch.core.alerts import Alert
from stanch.core.incidents import Incident, IncidentState
from stanch.core.series import SERVICE_WIDE


@dataclass(frozen=True, slots=True)
class CorrelationConfig:
    window_s: float = 600.0  # an incident quiet for longer than this takes no new alerts
    reopen_within_s: float = 900.0  # a resolved incident whose alert recurs within this reopens


def last_activity(incident: Incident) -> float:
    times = [a.updated_at for a in incident.alerts.values()]
    return max(times, default=incident.opened_at)


def related(alert: Alert, incident: Incident) -> bool:
    """Does ``alert`` describe the same trouble as ``incident``?"""
    if alert.service != incident.service:
        return False
    if alert.route != SERVICE_WIDE and alert.route in incident.routes:
        return True
    if alert.clients and incident.clients.intersection(alert.clients):
        return True
    for other in incident.alerts.values():
        if other.kind is not alert.kind:
            continue
        if alert.route == SERVICE_WIDE or other.route == SERVICE_WIDE:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an alert goes: an existing incident (maybe reopened), or a new one (None)."""

    incident: Incident | None
    reopen: bool = False


def place(
    alert: Alert, incidents: Iterable[Incident], now: float, config: CorrelationConfig
) -> Placement:
    candidates = sorted(incidents, key=lambda i: (-last_activity(i), i.id))
    for incident in candidates:
        recent = incident.is_open and now - last_activity(incident) <= config.window_s
        if recent and (alert.fingerprint in incident.alerts or related(alert, incident)):
            return Placement(incident)
    for incident in candidates:
        if (
            incident.state is IncidentState.RESOLVED
            and alert.fingerprint in incident.alerts
            and now - incident.entered.get(IncidentState.RESOLVED.value, now)
            <= config.reopen_within_s
        ):
            return Placement(incident, reopen=True)
    return Placement(None)
