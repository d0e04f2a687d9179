"""Noise control in the engine: silences, maintenance windows, inhibition, no-data, flapping."""

from __future__ import annotations

import random

import pytest

from stanch.core.alerts import AlertKind
from stanch.core.events import RequestEvent
from stanch.core.noise import MaintenanceWindow
from stanch.core.runbook import load_runbook_text
from stanch.engine import Engine
from stanch.store import Store

T0 = 1_800_000_000.0  # a Friday, 08:00 UTC
RUNBOOK = "version: 1\nrules: []\n"


class Shop:
    """Per-second traffic over several routes with knobs for rate and errors per route."""

    def __init__(self, engine: Engine, rps: dict[str, float]) -> None:
        self.engine = engine
        self.rps = dict(rps)
        self.errors = dict.fromkeys(rps, 0.0)
        self.rng = random.Random(5)
        self.t = T0

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            events = []
            for route, rate in self.rps.items():
                method, _, path = route.partition(" ")
                n = self._poisson(rate)
                for i in range(n):
                    status = 500 if self.rng.random() < self.errors[route] else 200
                    events.append(
                        RequestEvent(
                            self.t + i / max(n, 1),
                            "api",
                            method,
                            path,
                            status,
                            0.02,
                            f"c{self.rng.randrange(40)}",
                        )
                    )
            self.engine.ingest(events)
            self.t += 1.0
            self.engine.step(self.t)

    def _poisson(self, lam: float) -> int:
        # Knuth for small rates, normal approximation above: plenty for test traffic.
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, lam**0.5)))
        limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1


ROUTES = {"GET /a": 40.0, "GET /b": 40.0, "GET /c": 40.0}


@pytest.fixture
def engine(store: Store) -> Engine:
    return Engine(store, load_runbook_text(RUNBOOK), now=T0)


def test_silenced_alert_is_recorded_and_pages_when_the_silence_ends(engine: Engine) -> None:
    """A silenced error burst opens nothing while the silence lasts, is recorded with the
    reason, and opens an incident once the silence ends if it is still firing."""
    shop = Shop(engine, ROUTES)
    shop.run(150)
    engine.add_silence(
        [("service", "api")],
        starts_at=shop.t,
        ends_at=shop.t + 30,
        created_by="ops",
        comment="load test",
    )
    shop.errors["GET /a"] = 0.5
    shop.run(20)
    assert engine.incidents == {}
    assert any("silenced by S-0001" in s.reason for s in engine.suppressed)
    shop.run(20)
    assert len(engine.incidents) == 1
    incident = next(iter(engine.incidents.values()))
    assert "GET /a" in incident.routes


def test_a_held_alert_that_stops_firing_is_recorded_as_never_paged(engine: Engine) -> None:
    """An error burst that ends inside its silence opens nothing, and listeners (the audit
    trail) hear that it stopped while held back, naming the silence."""
    heard: list[tuple[str, dict[str, object]]] = []
    engine.listeners.append(lambda name, details: heard.append((name, details)))
    shop = Shop(engine, ROUTES)
    shop.run(150)
    engine.add_silence(
        [("service", "api")], starts_at=shop.t, ends_at=shop.t + 600, created_by="ops"
    )
    shop.errors["GET /a"] = 0.5
    shop.run(20)
    shop.errors["GET /a"] = 0.0
    shop.run(60)
    assert engine.incidents == {}
    cleared = [d for name, d in heard if name == "alert_suppressed_cleared"]
    assert "GET /a" in {d["route"] for d in cleared}
    assert {d["rule"] for d in cleared} == {"S-0001"}
    assert all("never paged" in str(d["reason"]) for d in cleared)


def test_maintenance_window_holds_back_covered_routes_only(engine: Engine) -> None:
    """During planned work on /a, its alerts are held; /b still pages."""
    shop = Shop(engine, ROUTES)
    shop.run(150)
    engine.add_maintenance(
        MaintenanceWindow(
            "M-1",
            "api",
            ("GET /a",),
            starts_at=shop.t,
            ends_at=shop.t + 600,
            comment="db migration",
        )
    )
    shop.errors["GET /a"] = 0.5
    shop.errors["GET /b"] = 0.5
    shop.run(15)
    routes = {r for i in engine.incidents.values() for r in i.routes}
    assert routes == {"GET /b"}
    assert any("maintenance window M-1" in s.reason for s in engine.suppressed)


def test_service_wide_drop_inhibits_the_route_drops_it_explains(engine: Engine) -> None:
    """Every route losing ~80% together is one service-wide incident; the echoing route
    alerts are held back as inhibited.

    With the ensemble, each route pages when its drop becomes news to it, a point or two apart;
    a route that pages before the routes firing the drop carry 75% of the traffic (the "broad"
    rule) is part of the incident rather than inhibited, so at least one echo is held back."""
    shop = Shop(engine, ROUTES)
    shop.run(200)
    for route in ROUTES:
        shop.rps[route] = ROUTES[route] * 0.2
    shop.run(15)
    assert len(engine.incidents) == 1
    incident = next(iter(engine.incidents.values()))
    kinds = {(a.route, a.kind) for a in incident.alerts.values()}
    assert ("*", AlertKind.TRAFFIC_DROP) in kinds
    inhibited = [s for s in engine.suppressed if s.reason.startswith("inhibited")]
    assert len(inhibited) >= 1
    service_wide = {a.fingerprint for a in incident.alerts.values() if a.route == "*"}
    assert not {s.fingerprint for s in inhibited} & service_wide  # only echoes are held back


def test_a_cause_is_not_inhibited_by_its_own_echo(engine: Engine) -> None:
    """One route failing hard is far worse than the service average: it is never inhibited."""
    shop = Shop(engine, ROUTES)
    shop.run(150)
    shop.errors["GET /a"] = 0.8
    shop.run(15)
    routes = {r for i in engine.incidents.values() for r in i.routes}
    assert "GET /a" in routes
    assert not [s for s in engine.suppressed if "GET /a" in s.fingerprint]


def test_busy_route_going_silent_is_a_traffic_drop_never_an_error_storm(engine: Engine) -> None:
    """A route with 40 req/s that stops answering raises a traffic drop; no error alert."""
    shop = Shop(engine, {"GET /a": 40.0, "GET /b": 40.0})
    shop.run(200)
    shop.rps["GET /a"] = 0.0
    shop.run(15)
    kinds = {(a.route, a.kind) for i in engine.incidents.values() for a in i.alerts.values()}
    assert ("GET /a", AlertKind.TRAFFIC_DROP) in kinds
    assert not any(k in (AlertKind.ERROR_BURST, AlertKind.SLO_BURN) for _, k in kinds)


def test_quiet_route_going_silent_is_not_an_alert(engine: Engine) -> None:
    """A route that sees a request every few seconds (night traffic) going quiet is silence."""
    shop = Shop(engine, {"GET /a": 0.3, "GET /b": 40.0})
    shop.run(300)
    shop.rps["GET /a"] = 0.0
    shop.run(120)
    assert engine.incidents == {}


def test_flapping_incident_needs_longer_to_resolve(store: Store) -> None:
    """An incident that reopened must stay healthy twice as long before it resolves again."""
    engine = Engine(store, load_runbook_text(RUNBOOK), now=T0)
    shop = Shop(engine, ROUTES)
    shop.run(150)
    shop.errors["GET /a"] = 0.6
    shop.run(10)
    shop.errors["GET /a"] = 0.0
    shop.run(90)  # cleared after ~10 s, healthy 60 s: resolved
    incident = next(iter(engine.incidents.values()))
    assert incident.state == "resolved"
    shop.errors["GET /a"] = 0.6
    shop.run(10)
    assert incident.state == "detected"
    assert incident.reopens == 1
    shop.errors["GET /a"] = 0.0
    shop.run(90)
    assert incident.state == "detected"  # 60 s is no longer enough
    shop.run(60)
    assert incident.state == "resolved"


def test_silencing_a_route_also_holds_the_service_wide_alert_it_causes(engine: Engine) -> None:
    """A load test on GET /a, silenced by route: its failures also push the service's error
    ratio up, and that service-wide alert is held too (made of held routes), through the
    burst and its end: nothing pages."""
    shop = Shop(engine, {"GET /a": 80.0, "GET /b": 20.0, "GET /c": 20.0})
    shop.run(150)
    engine.add_silence(
        [("route", "GET /a")], starts_at=shop.t, ends_at=shop.t + 600, created_by="ops"
    )
    shop.errors["GET /a"] = 0.5
    shop.run(60)
    shop.errors["GET /a"] = 0.0
    shop.run(60)
    assert engine.incidents == {}
    service_held = [s for s in engine.suppressed if s.route == "*"]
    assert service_held, "the service-wide alert was never evaluated against the silence"
    assert all(s.via_routes for s in service_held)
    assert "GET /a (S-0001)" in service_held[0].reason


def test_a_route_nothing_holds_makes_the_service_wide_alert_page(engine: Engine) -> None:
    """Maintenance on GET /a holds what /a causes; when GET /b fails too, the service-wide
    alert is no longer only what was planned, and an incident opens."""
    shop = Shop(engine, {"GET /a": 80.0, "GET /b": 40.0, "GET /c": 20.0})
    shop.run(150)
    engine.add_maintenance(
        MaintenanceWindow(
            "M-1", "api", ("GET /a",), starts_at=shop.t, ends_at=shop.t + 600, comment="deploy"
        )
    )
    shop.errors["GET /a"] = 0.5
    shop.run(30)
    assert engine.incidents == {}
    assert any(s.route == "*" and s.cause == "maintenance" for s in engine.suppressed)
    shop.errors["GET /b"] = 0.5
    shop.run(30)
    assert len(engine.incidents) == 1
    incident = next(iter(engine.incidents.values()))
    paged = {a.route for a in incident.alerts.values()}
    assert "*" in paged  # the service-wide alert (it explains /b's, which it inhibits)
    assert "GET /a" not in paged


@pytest.mark.parametrize("left", [0.0, 0.2])
def test_a_whole_service_outage_is_one_incident_with_its_routes_inhibited(
    engine: Engine, left: float
) -> None:
    """Six routes losing all (or 80%) of their traffic at once: one service-wide incident,
    and every route's drop is held back as inhibited, naming the service-wide alert.

    The audit's outage paged three incidents: routes down to nothing compared a floored
    1e-9 ratio with the service's, and the routes that had fired by then carried too little
    of the traffic for the service-wide alert to count as broad."""
    heard: list[tuple[str, dict[str, object]]] = []
    engine.listeners.append(lambda name, details: heard.append((name, details)))
    routes = {f"GET /r{i}": 20.0 for i in range(6)}
    shop = Shop(engine, routes)
    shop.run(200)
    for route in routes:
        shop.rps[route] = routes[route] * left
    shop.run(30)
    assert len(engine.incidents) == 1
    incident = next(iter(engine.incidents.values()))
    assert incident.title == "Traffic drop on service api"
    assert {(a.route, a.kind) for a in incident.alerts.values()} == {("*", AlertKind.TRAFFIC_DROP)}
    service_fp = next(iter(incident.alerts))
    inhibited = [s for s in engine.suppressed if s.cause == "inhibition"]
    assert {s.route for s in inhibited} == set(routes)
    assert {s.rule for s in inhibited} == {service_fp}
    assert all(s.reason.startswith("inhibited by the service-wide traffic_drop") for s in inhibited)
    said = [d for name, d in heard if name == "alert_suppressed"]
    assert {d["route"] for d in said} == set(routes)
    assert {d["cause"] for d in said} == {"inhibition"}


def test_a_busy_route_failing_alone_pages_as_itself(engine: Engine) -> None:
    """One route with half the traffic failing makes the service-wide burst, but one route
    is a cause, not a broad outage: it pages under its own name (its runbook rules apply)."""
    shop = Shop(engine, {"POST /pay": 40.0, "GET /ping": 40.0})
    shop.run(150)
    shop.errors["POST /pay"] = 0.5
    shop.run(15)
    assert len(engine.incidents) == 1
    incident = next(iter(engine.incidents.values()))
    assert incident.title == "Error burst on POST /pay"
    assert not [s for s in engine.suppressed if s.cause == "inhibition"]
