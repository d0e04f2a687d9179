"""plan_actions: runbook actions resolved to targets, with skip reasons and no duplicates."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.alerts import Alert, AlertKind
from stanch.core.events import ChangeEvent, ChangeKind
from stanch.core.incidents import Incident
from stanch.core.planning import Skipped, plan_actions
from stanch.core.runbook import Runbook, load_runbook_text

from .factories import make_action, make_alert, make_incident

RUNBOOK = load_runbook_text(
    """\
version: 1
defaults:
  ttl: 20m
  verify_within: 90s
rules:
  - name: errors-break
    match: {kinds: [error_burst]}
    actions:
      - kind: circuit_break
        mode: auto
        ttl: 5m
        params: {open_for: 15s}
      - kind: rollback_config
        mode: approve
  - name: flood
    match: {kinds: [traffic_spike]}
    actions:
      - kind: throttle_client
        mode: auto
        params: {rate: 5, burst: 10}
      - kind: throttle_client
        mode: approve
        params: {rate: 1}
  - name: pinned
    match: {kinds: [latency_spike]}
    actions:
      - kind: disable_route
        mode: approve
        target: "GET /reports"
""",
    "test-runbook.yaml",
)


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"ACT-{next(counter)}"


def plan(
    alert: Alert,
    incident: Incident | None = None,
    *,
    runbook: Runbook = RUNBOOK,
    existing: tuple[Action, ...] = (),
    changes: dict[str, ChangeEvent] | None = None,
) -> tuple[list[Action], list[Skipped]]:
    incident = incident or make_incident(alerts=(alert,))
    return plan_actions(alert, incident, runbook, existing, changes or {}, now=500.0, new_id=ids())


def config_change(change_id: str = "config-v7", version: str = "7") -> ChangeEvent:
    return ChangeEvent(
        id=change_id,
        ts=400.0,
        service="shop",
        kind=ChangeKind.CONFIG,
        summary="payment timeout 80ms",
        key="payment.timeout_ms",
        version=version,
    )


def test_route_action_targets_the_alert_route() -> None:
    """A rule without a target acts on the alert's route, with the spec's ttl and params."""
    planned, skipped = plan(make_alert(route="POST /checkout"))
    breaker = next(a for a in planned if a.kind is ActionKind.CIRCUIT_BREAK)
    assert breaker.target == "POST /checkout"
    assert breaker.ttl_s == 300.0
    assert breaker.verify_within_s == 90.0
    assert breaker.params["open_for"] == 15.0
    assert breaker.rule == "errors-break"
    assert breaker.service == "shop"
    assert breaker.created_at == 500.0
    assert breaker.incident_id == "INC-1"
    assert breaker.reason == make_alert().explanation
    assert breaker.id == "ACT-1"
    assert skipped == [
        Skipped(
            "errors-break", ActionKind.ROLLBACK_CONFIG, "no configuration change among the suspects"
        )
    ]


def test_auto_is_approved_and_approve_is_pending() -> None:
    """auto actions start APPROVED (decided by the runbook); approve ones wait PENDING."""
    alert = make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x", clients=("bot",))
    planned, _ = plan(alert)
    # Both rules target the same client with the same kind: only the first is planned.
    assert len(planned) == 1
    assert planned[0].state is ActionState.APPROVED
    assert planned[0].mode is ActionMode.AUTO
    assert planned[0].decided_by == "runbook"
    pinned, _ = plan(make_alert(AlertKind.LATENCY_SPIKE))
    assert pinned[0].state is ActionState.PENDING
    assert pinned[0].decided_by == ""


def test_client_action_targets_the_most_responsible_client() -> None:
    """A client action takes the first client the alert names."""
    alert = make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x", clients=("bot", "acme"))
    planned, skipped = plan(alert)
    assert [(a.kind, a.target) for a in planned] == [(ActionKind.THROTTLE_CLIENT, "bot")]
    assert planned[0].params == {"rate": 5.0, "burst": 10, "route": None}
    assert skipped == []


def test_client_action_skipped_without_a_client() -> None:
    """Without a client in the alert the client action is skipped, saying why."""
    planned, skipped = plan(make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x"))
    assert planned == []
    assert {s.reason for s in skipped} == {"no client explains this alert"}
    assert len(skipped) == 2


def test_service_wide_alert_names_no_route() -> None:
    """A route action on a service-wide alert is skipped rather than guessing a route."""
    planned, skipped = plan(make_alert(route="*"))
    assert planned == []
    reasons = {s.kind: s.reason for s in skipped}
    assert reasons[ActionKind.CIRCUIT_BREAK] == "a service-wide alert names no route to act on"


def test_explicit_target_wins() -> None:
    """A runbook target is used as written, whatever the alert's route."""
    planned, _ = plan(make_alert(AlertKind.LATENCY_SPIKE, route="*"))
    assert [(a.kind, a.target) for a in planned] == [(ActionKind.DISABLE_ROUTE, "GET /reports")]


def test_rollback_targets_the_confident_config_suspect() -> None:
    """rollback_config targets the top config suspect's key and version."""
    alert = make_alert()
    incident = make_incident(alerts=(alert,))
    incident.suspects = [
        {"kind": "dimension", "ref": "client=bot", "confidence": 0.9},
        {"kind": "change", "ref": "deploy-3", "confidence": 0.8},
        {"kind": "change", "ref": "config-v7", "confidence": 0.6},
    ]
    deploy = ChangeEvent("deploy-3", 300.0, "shop", ChangeKind.DEPLOY, "v1.2", version="1.2")
    changes = {"config-v7": config_change(), "deploy-3": deploy}
    planned, skipped = plan(alert, incident, changes=changes)
    rollback = next(a for a in planned if a.kind is ActionKind.ROLLBACK_CONFIG)
    assert rollback.target == "payment.timeout_ms"
    assert rollback.params["version"] == 7
    assert rollback.params["change_id"] == "config-v7"
    assert rollback.params["min_confidence"] == 0.3
    assert rollback.state is ActionState.PENDING
    assert skipped == []


def test_rollback_skipped_when_the_suspect_is_not_confident() -> None:
    """A config suspect under min_confidence is not rolled back; the reason gives both numbers."""
    alert = make_alert()
    incident = make_incident(alerts=(alert,))
    incident.suspects = [{"kind": "change", "ref": "config-v7", "confidence": 0.2}]
    planned, skipped = plan(alert, incident, changes={"config-v7": config_change()})
    assert ActionKind.ROLLBACK_CONFIG not in {a.kind for a in planned}
    assert skipped == [
        Skipped(
            "errors-break",
            ActionKind.ROLLBACK_CONFIG,
            "top config suspect config-v7 has confidence 20% < 30%",
        )
    ]


def test_rollback_ignores_unversioned_or_unknown_changes() -> None:
    """Suspects that are not known, versioned config changes are passed over."""
    alert = make_alert()
    incident = make_incident(alerts=(alert,))
    incident.suspects = [
        {"kind": "change", "ref": "missing", "confidence": 0.9},
        {"kind": "change", "ref": "config-v0", "confidence": 0.9},
    ]
    changes = {"config-v0": config_change("config-v0", version="")}
    _, skipped = plan(alert, incident, changes=changes)
    assert [s.reason for s in skipped] == ["no configuration change among the suspects"]


def test_open_action_on_the_same_target_is_not_duplicated() -> None:
    """An open action of the same kind and target for the incident prevents a second one."""
    alert = make_alert(route="POST /checkout")
    existing = make_action(kind=ActionKind.CIRCUIT_BREAK, target="POST /checkout")
    planned, _ = plan(alert, existing=(existing,))
    assert planned == []
    pending = make_action(state=ActionState.PENDING, applied_at=None)
    assert plan(alert, existing=(pending,))[0] == []


def test_closed_or_foreign_actions_do_not_block_planning() -> None:
    """A lifted action, or one of another incident, does not count as a duplicate."""
    alert = make_alert(route="POST /checkout")
    lifted = make_action(state=ActionState.LIFTED)
    foreign = make_action(incident_id="INC-9")
    other_target = make_action(target="GET /other")
    for existing in (lifted, foreign, other_target):
        planned, _ = plan(alert, existing=(existing,))
        assert [(a.kind, a.target) for a in planned] == [
            (ActionKind.CIRCUIT_BREAK, "POST /checkout")
        ]


def test_no_matching_rule_plans_nothing() -> None:
    """An alert no rule matches yields neither actions nor skips."""
    assert plan(make_alert(AlertKind.TRAFFIC_DROP)) == ([], [])


def test_new_ids_are_drawn_per_planned_action() -> None:
    """Each planned action gets a fresh id from new_id, in plan order."""
    alert = make_alert()
    incident = make_incident(alerts=(alert,))
    incident.suspects = [{"kind": "change", "ref": "config-v7", "confidence": 0.9}]
    planned, _ = plan(alert, incident, changes={"config-v7": config_change()})
    assert [a.id for a in planned] == ["ACT-1", "ACT-2"]
