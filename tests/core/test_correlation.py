"""Correlation: which incident a new alert belongs to."""

from __future__ import annotations

from stanch.core.alerts import AlertKind
from stanch.core.correlation import CorrelationConfig, last_activity, place, related
from stanch.core.incidents import IncidentState

from .factories import make_alert, make_incident

CFG = CorrelationConfig(window_s=600.0, reopen_within_s=900.0)


def test_related_needs_the_same_service() -> None:
    """An alert on another service is never related, even on the same route."""
    incident = make_incident(alerts=(make_alert(route="GET /x"),))
    assert not related(make_alert(service="cart", route="GET /x"), incident)


def test_related_by_shared_route() -> None:
    """A different kind of alert on a route the incident already covers is related."""
    incident = make_incident(alerts=(make_alert(route="GET /x"),))
    assert related(make_alert(AlertKind.LATENCY_SPIKE, route="GET /x"), incident)
    assert not related(make_alert(AlertKind.LATENCY_SPIKE, route="GET /y"), incident)


def test_related_by_implicated_client() -> None:
    """An alert naming a client the incident implicates is related, on any route."""
    spike = make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x", clients=("acme",))
    incident = make_incident(alerts=(spike,))
    other = make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /y", clients=("globex", "acme"))
    assert related(other, incident)
    assert not related(
        make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /y", clients=("x",)), incident
    )


def test_related_service_wide_view_of_the_same_kind() -> None:
    """A service-wide alert joins a route alert of the same kind, and vice versa."""
    route_burst = make_incident(alerts=(make_alert(route="POST /checkout"),))
    assert related(make_alert(route="*"), route_burst)
    assert not related(make_alert(AlertKind.LATENCY_SPIKE, route="*"), route_burst)
    service_burst = make_incident(alerts=(make_alert(route="*"),))
    assert related(make_alert(route="GET /other"), service_burst)
    assert not related(make_alert(AlertKind.TRAFFIC_DROP, route="GET /other"), service_burst)


def test_place_joins_a_recent_open_incident() -> None:
    """A related alert within the activity window goes to the open incident."""
    incident = make_incident(alerts=(make_alert(route="GET /x", updated_at=1000.0),))
    alert = make_alert(AlertKind.LATENCY_SPIKE, route="GET /x")
    placement = place(alert, [incident], 1500.0, CFG)
    assert placement.incident is incident
    assert not placement.reopen


def test_place_opens_a_new_incident_after_the_window() -> None:
    """An incident quiet for longer than window_s takes no new alerts."""
    incident = make_incident(alerts=(make_alert(route="GET /x", updated_at=1000.0),))
    assert last_activity(incident) == 1000.0
    assert place(make_alert(route="GET /x"), [incident], 1601.0, CFG).incident is None


def test_place_ignores_unrelated_incidents() -> None:
    """An unrelated alert opens a new incident even while another is active."""
    incident = make_incident(alerts=(make_alert(route="GET /x", updated_at=1000.0),))
    alert = make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /y")
    assert place(alert, [incident], 1001.0, CFG).incident is None


def test_place_prefers_the_most_recently_active_incident() -> None:
    """When two open incidents fit, the one active most recently wins."""
    old = make_incident("INC-1", alerts=(make_alert(route="GET /x", updated_at=900.0),))
    new = make_incident("INC-2", alerts=(make_alert(route="GET /x", updated_at=990.0),))
    assert place(make_alert(route="GET /x"), [old, new], 1000.0, CFG).incident is new


def test_place_reopens_a_recently_resolved_incident_for_its_own_alert() -> None:
    """The same alert firing again soon after resolution reopens the incident."""
    alert = make_alert(route="GET /x", updated_at=1000.0)
    incident = make_incident(alerts=(alert,))
    incident.transition(IncidentState.RESOLVED, 1100.0)
    placement = place(alert, [incident], 1900.0, CFG)
    assert placement.incident is incident
    assert placement.reopen
    assert place(alert, [incident], 2001.0, CFG).incident is None


def test_place_does_not_reopen_for_a_merely_related_alert() -> None:
    """Reopening needs the incident's own alert (fingerprint), not just a shared route."""
    incident = make_incident(alerts=(make_alert(route="GET /x", updated_at=1000.0),))
    incident.transition(IncidentState.RESOLVED, 1100.0)
    other = make_alert(AlertKind.LATENCY_SPIKE, route="GET /x")
    assert place(other, [incident], 1200.0, CFG).incident is None


def test_place_never_reopens_a_closed_incident() -> None:
    """A closed incident is history: the alert opens a new one."""
    alert = make_alert(route="GET /x", updated_at=1000.0)
    incident = make_incident(alerts=(alert,))
    incident.transition(IncidentState.RESOLVED, 1100.0)
    incident.transition(IncidentState.CLOSED, 1150.0)
    assert place(alert, [incident], 1200.0, CFG).incident is None


def test_place_with_no_incidents() -> None:
    """With nothing open the alert starts a new incident."""
    placement = place(make_alert(), [], 0.0, CFG)
    assert placement.incident is None
    assert not placement.reopen


def test_last_activity_falls_back_to_opening() -> None:
    """An incident without alerts was last active when it opened."""
    assert last_activity(make_incident(opened_at=42.0)) == 42.0
