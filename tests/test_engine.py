"""The engine's handling of humans, time limits and relapses, on synthetic traffic."""

from __future__ import annotations

import random

import pytest

from stanch.core.actions import ActionKind, ActionState
from stanch.core.events import RequestEvent
from stanch.core.incidents import IncidentState
from stanch.core.runbook import load_runbook_text
from stanch.engine import Engine, EngineConfig
from stanch.store import Store

T0 = 1_800_000_000.0

RUNBOOK = """
version: 1
defaults: {ttl: 10m, verify_within: 1m}
rules:
  - name: pay-errors
    match: {kinds: [error_burst], routes: ["POST /pay"]}
    actions:
      - {kind: circuit_break, mode: approve, params: {open_for: 10s}}
  - name: ping-errors
    match: {kinds: [error_burst], routes: ["GET /ping"]}
    actions:
      - {kind: shed_load, mode: auto, ttl: 90s, params: {fraction: 0.5}}
"""


class Traffic:
    """Deterministic per-second traffic for a few routes, with a knob for each route's errors."""

    def __init__(self, engine: Engine, seed: int = 3) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.t = T0
        self.error_ratio = {"POST /pay": 0.0, "GET /ping": 0.0}

    def run(self, seconds: int, rps: int = 20) -> None:
        for _ in range(seconds):
            events = []
            for route, ratio in self.error_ratio.items():
                method, _, path = route.partition(" ")
                for i in range(rps):
                    status = 500 if self.rng.random() < ratio else 200
                    client = f"c{self.rng.randrange(30)}"
                    events.append(
                        RequestEvent(self.t + i / rps, "api", method, path, status, 0.02, client)
                    )
            self.engine.ingest(events)
            self.t += 1.0
            self.engine.step(self.t)


@pytest.fixture
def engine(store: Store) -> Engine:
    return Engine(store, load_runbook_text(RUNBOOK), config=EngineConfig(), now=T0)


def _incident(engine: Engine, route: str):  # type: ignore[no-untyped-def]
    found = [i for i in engine.incidents.values() if route in i.routes]
    assert len(found) == 1
    return found[0]


def test_rejected_action_is_never_applied(engine: Engine) -> None:
    """A pending breaker that a human rejects stays out of the policy, with the reason noted."""
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["POST /pay"] = 0.5
    traffic.run(8)
    incident = _incident(engine, "POST /pay")
    (pending,) = engine.incident_actions(incident.id)
    assert pending.state is ActionState.PENDING
    engine.decide(pending.id, False, actor="erin", now=traffic.t, reason="false alarm")
    assert engine.actions[pending.id].state is ActionState.REJECTED
    assert engine.policies.get("api") is None or engine.policies["api"].is_empty
    assert any("rejected by erin: false alarm" in e.text for e in incident.timeline)
    with pytest.raises(Exception, match="rejected -> approved"):
        engine.decide(pending.id, True, actor="erin", now=traffic.t)


def test_approved_breaker_answers_503_then_revert_lifts_it(engine: Engine) -> None:
    """Approval puts the breaker in force at once (503 from the enforcer); a revert removes it."""
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["POST /pay"] = 0.5
    traffic.run(8)
    incident = _incident(engine, "POST /pay")
    (pending,) = engine.incident_actions(incident.id)
    engine.decide(pending.id, True, actor="erin", now=traffic.t)
    enforcer = engine.holders["api"].enforcer
    verdict = enforcer.decide(traffic.t, "POST /pay", "c1")
    assert verdict is not None
    assert verdict.status == 503
    assert incident.id.encode() in verdict.body
    assert incident.state is IncidentState.ISOLATED
    engine.revert(pending.id, actor="erin", now=traffic.t + 1)
    assert engine.actions[pending.id].state is ActionState.REVERTED
    assert enforcer.decide(traffic.t + 1, "POST /pay", "c1") is None


def test_mitigation_that_does_not_help_is_reported_and_expires(engine: Engine) -> None:
    """Shedding load does not fix errors: after verify_within the timeline says so, and the TTL
    then releases the action even though the incident is still open."""
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["GET /ping"] = 0.6
    traffic.run(70)
    incident = _incident(engine, "GET /ping")
    (shed,) = engine.incident_actions(incident.id)
    assert shed.kind is ActionKind.SHED_LOAD
    assert engine.actions[shed.id].verified is False
    assert any(e.kind == "not_helping" for e in incident.timeline)
    traffic.run(30)
    assert engine.actions[shed.id].state is ActionState.EXPIRED
    assert engine.policies["api"].is_empty
    assert incident.is_open


def test_incident_resolves_after_recovery_and_relapse_restores_strength(store: Store) -> None:
    """Errors stop: the shed is staged down; errors return during lifting: back to full
    strength; errors stop for good: lifted and resolved."""
    engine = Engine(store, load_runbook_text(RUNBOOK.replace("ttl: 90s", "ttl: 1h")), now=T0)
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["GET /ping"] = 0.6
    traffic.run(10)
    incident = _incident(engine, "GET /ping")
    (shed,) = engine.incident_actions(incident.id)
    traffic.error_ratio["GET /ping"] = 0.0
    traffic.run(85)  # alert clears after 10 s, healthy for 60 s, then stage 1
    assert engine.actions[shed.id].state is ActionState.LIFTING
    assert engine.policies["api"].routes["GET /ping"].shed_fraction == pytest.approx(0.25)
    traffic.error_ratio["GET /ping"] = 0.6
    traffic.run(6)
    assert engine.actions[shed.id].state is ActionState.APPLIED
    assert engine.policies["api"].routes["GET /ping"].shed_fraction == pytest.approx(0.5)
    assert any(e.kind == "recovery_relapse" for e in incident.timeline)
    traffic.error_ratio["GET /ping"] = 0.0
    traffic.run(150)
    assert incident.state is IncidentState.RESOLVED
    assert engine.actions[shed.id].state is ActionState.LIFTED


def test_humans_acknowledge_comment_and_resolve(engine: Engine) -> None:
    """Acknowledge, comment and manual resolution land on the timeline and close actions."""
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["POST /pay"] = 0.5
    traffic.run(8)
    incident = _incident(engine, "POST /pay")
    engine.acknowledge(incident.id, actor="frank", now=traffic.t)
    assert incident.state is IncidentState.ACKNOWLEDGED
    engine.comment(incident.id, "looking at the payment provider", actor="frank", now=traffic.t)
    engine.resolve(incident.id, actor="frank", now=traffic.t + 5, resolution="provider fixed")
    assert incident.state is IncidentState.RESOLVED
    assert all(not a.is_open for a in engine.incident_actions(incident.id))
    kinds = [e.kind for e in incident.timeline]
    assert "comment" in kinds
    assert engine.store.get_postmortem(incident.id) is not None


def test_a_failing_listener_does_not_stop_the_loop(engine: Engine) -> None:
    """A notifier that raises is logged and skipped; incidents still open."""

    def broken(name: str, details: dict[str, object]) -> None:
        raise RuntimeError("webhook down")

    engine.listeners.append(broken)
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["POST /pay"] = 0.5
    traffic.run(8)
    assert len(engine.incidents) == 1


def test_config_changes_are_versioned_persisted_and_rolled_back(store: Store) -> None:
    """Changes go through validation into new versions that survive a restart; a rollback to
    an old version is itself a new version and a recorded change."""
    from stanch.core.config import ConfigKeySpec, ConfigStore
    from stanch.core.errors import ValidationError

    schema = [ConfigKeySpec("timeout_ms", "int", 3000, minimum=1, maximum=60_000)]
    engine = Engine(store, load_runbook_text(RUNBOOK), now=T0)
    engine.add_config_store(ConfigStore("api", schema, now=T0))
    engine.change_config("api", T0 + 1, {"timeout_ms": 80}, author="bob")
    with pytest.raises(ValidationError, match="timeout_ms"):
        engine.change_config("api", T0 + 2, {"timeout_ms": -5}, author="bob")
    change = engine.rollback_config("api", T0 + 3, 1, author="alice", reason="undo")
    assert change.id == "config-v3"
    again = Engine(store, load_runbook_text(RUNBOOK), now=T0 + 4)
    config = again.add_config_store(ConfigStore("api", schema, now=T0 + 4))
    assert [v.version for v in config.history] == [1, 2, 3]
    assert config.get("timeout_ms") == 3000
    assert "config-v2" in again.changes


def test_a_service_past_its_route_cap_is_logged_once_by_the_engine(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The guard (pure core) leaves a notice on a service's first fold; the engine logs it as
    a warning, once."""
    config = EngineConfig(max_routes_per_service=2)
    engine = Engine(store, load_runbook_text(RUNBOOK), config=config, now=T0)
    events = [RequestEvent(T0 + 0.5, "api", "GET", f"/item/{i}", 200, 0.01) for i in range(5)]
    with caplog.at_level("WARNING", logger="stanch.engine"):
        engine.ingest(events)
        engine.step(T0 + 2.0)
        engine.ingest(events)
        engine.step(T0 + 3.0)
    warned = [r.getMessage() for r in caplog.records if "max_routes_per_service" in r.getMessage()]
    assert len(warned) == 1
    assert "'api'" in warned[0]


def test_an_alert_that_returns_while_the_incident_is_open_is_on_the_timeline(
    engine: Engine,
) -> None:
    """The burst on /ping clears, the incident verifies recovery, and /ping fails again
    before it resolves: the timeline says it cleared and that it came back, and when."""
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["GET /ping"] = 0.6
    traffic.run(10)
    traffic.error_ratio["GET /ping"] = 0.0
    traffic.run(25)  # cleared, healthy for less than the 60 s recovery needs
    incident = _incident(engine, "GET /ping")
    assert incident.is_open
    cleared_at = max(e.ts for e in incident.timeline if e.kind == "alert_cleared")
    traffic.error_ratio["GET /ping"] = 0.6
    traffic.run(10)
    assert incident.is_open
    assert incident.reopens == 0
    returned = [e for e in incident.timeline if e.kind == "alert_returned"]
    assert "GET /ping" in [e.data["route"] for e in returned]
    assert min(e.ts for e in returned) > cleared_at
    assert all(e.text.startswith("back: ") for e in returned)
    assert incident.healthy_since is None


def test_a_reopened_incident_is_titled_after_what_reopened_it(engine: Engine) -> None:
    """Opened by /pay's burst (the service-wide burst joined it), resolved, then reopened by
    both routes failing together (the service-wide burst fires again; the routes' own
    alerts are its echoes). /pay alone is not the story now: the title says the service is
    failing, and the timeline keeps the old title and says which alert came back."""
    traffic = Traffic(engine)
    traffic.run(150)
    traffic.error_ratio["POST /pay"] = 0.9
    traffic.run(12)
    incident = _incident(engine, "POST /pay")
    assert incident.title == "Error burst on POST /pay"
    assert "*" in {a.route for a in incident.alerts.values()}
    traffic.error_ratio["POST /pay"] = 0.0
    traffic.run(120)
    assert incident.state is IncidentState.RESOLVED
    traffic.error_ratio["POST /pay"] = traffic.error_ratio["GET /ping"] = 0.4
    traffic.run(12)
    assert incident.state is IncidentState.DETECTED
    assert incident.reopens == 1
    assert len(engine.incidents) == 1
    assert incident.title == "Error burst on service api"
    (retitled,) = [e for e in incident.timeline if e.kind == "title"]
    assert retitled.data == {
        "before": "Error burst on POST /pay",
        "after": "Error burst on service api",
    }
    returned = [e for e in incident.timeline if e.kind == "alert_returned"]
    assert [e.data["route"] for e in returned][:1] == ["*"]
    stored = engine.store.get_incident(incident.id)
    assert stored is not None
    assert stored.title == "Error burst on service api"
