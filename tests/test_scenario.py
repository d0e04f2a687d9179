"""The demo's two incidents, end to end, through the real ASGI app on a simulated clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stanch.core.actions import ActionKind, ActionMode, ActionState
from stanch.core.incidents import IncidentState
from stanch.demo.scenario import DemoReport, DemoWorld, Scenario
from stanch.store import Store

pytestmark = pytest.mark.integration

DETECTION_BUDGET_S = 10.0


@pytest.fixture
def demo(demo_run: tuple[DemoReport, str]) -> tuple[DemoReport, str]:
    return demo_run


def _by_route(report: DemoReport, route: str):  # type: ignore[no-untyped-def]
    found = [i for i in report.incidents if route in i.routes]
    assert len(found) == 1, f"expected one incident on {route}, got {found}"
    return found[0]


def test_exactly_the_two_injected_incidents_open(demo: tuple[DemoReport, str]) -> None:
    """Half an hour of noisy traffic yields the two injected incidents and nothing else."""
    report, _ = demo
    assert len(report.incidents) == 2
    assert {r for i in report.incidents for r in i.routes} == {"POST /checkout", "GET /search"}


def test_both_incidents_detected_within_ten_seconds(demo: tuple[DemoReport, str]) -> None:
    """Each incident opens within 10 simulated seconds of its injected onset at 1 s windows."""
    report, _ = demo
    checkout = _by_route(report, "POST /checkout")
    flood = _by_route(report, "GET /search")
    assert 0 < checkout.opened_at - report.onsets["checkout"] <= DETECTION_BUDGET_S
    assert 0 < flood.opened_at - report.onsets["flood"] <= DETECTION_BUDGET_S


def test_checkout_incident_isolated_by_automatic_breaker_and_fixed_by_rollback(
    demo: tuple[DemoReport, str],
) -> None:
    """The bad config change is the top suspect; the breaker opens automatically; it is rolled
    back, and checkout's severity reflects a real share of failing traffic."""
    report, _ = demo
    checkout = _by_route(report, "POST /checkout")
    assert checkout.suspects[0]["ref"] == "config-v2"
    assert "payments.timeout_ms" in checkout.suspects[0]["summary"]
    assert checkout.severity in ("SEV1", "SEV2")
    kinds = {a.kind: a for a in report.actions[checkout.id]}
    assert kinds[ActionKind.CIRCUIT_BREAK].mode is ActionMode.AUTO
    assert kinds[ActionKind.CIRCUIT_BREAK].target == "POST /checkout"
    assert kinds[ActionKind.ROLLBACK_CONFIG].target == "payments.timeout_ms"
    assert checkout.entered.get("isolated") is not None
    assert checkout.impact.protected > 0


def test_flooding_client_alone_is_throttled_after_operator_approval(
    demo: tuple[DemoReport, str],
) -> None:
    """The flood is pinned on its client, whose throttle waits for and gets a human's approval."""
    report, _ = demo
    flood = _by_route(report, "GET /search")
    throttles = [a for a in report.actions[flood.id] if a.kind is ActionKind.THROTTLE_CLIENT]
    assert len(throttles) == 1
    throttle = throttles[0]
    assert throttle.target == report.scenario.flood_client
    assert throttle.mode is ActionMode.APPROVE
    assert throttle.decided_by == report.scenario.operator
    assert throttle.applied_at is not None
    assert throttle.applied_at - throttle.created_at >= report.scenario.operator_delay_s
    client_actions = [a for acts in report.actions.values() for a in acts if a.kind.targets_client]
    assert {a.target for a in client_actions} == {report.scenario.flood_client}
    assert flood.impact.protected > 1000
    assert flood.suspects[0]["ref"] == f"client={report.scenario.flood_client}"


def test_both_incidents_resolve_with_all_mitigations_lifted(demo: tuple[DemoReport, str]) -> None:
    """Recovery is verified, every action is closed, the stored policy is empty again."""
    report, db_url = demo
    for incident in report.incidents:
        assert incident.state is IncidentState.RESOLVED
        assert not incident.firing_alerts
        for action in report.actions[incident.id]:
            assert not action.is_open, action
            assert action.state in (ActionState.LIFTED,), action
        texts = [e.text for e in incident.timeline]
        assert any("recovery verified" in t for t in texts)
    store = Store.open(db_url)
    try:
        assert store.load_policies()["shop"].is_empty
        assert store.open_incidents() == []
    finally:
        store.close()


def test_post_mortems_are_written_for_both(demo: tuple[DemoReport, str]) -> None:
    """A Markdown post-mortem per incident lands in the output folder with its key sections."""
    report, _ = demo
    assert set(report.postmortems) == {i.id for i in report.incidents}
    for path in report.postmortems.values():
        text = Path(path).read_text()
        for section in ("## Summary", "## Impact", "## Timeline", "## Suspects", "## Follow-ups"):
            assert section in text


def test_restart_mid_incident_restores_incident_and_policy_without_repeating_actions(
    tmp_path: Path,
) -> None:
    """Stop during the flood with the throttle in force; a new engine on the same database has
    the incident and the throttle back, applies nothing twice, and still resolves it."""
    scenario = Scenario()
    db_url = f"sqlite:///{tmp_path / 'restart.db'}"
    stop_at = scenario.start + scenario.flood_start_s + 60  # throttle approved and applied

    first = DemoWorld(scenario, db_url=db_url)
    asyncio.run(first.run(stop_at))
    open_before = [i for i in first.engine.incidents.values() if i.is_open]
    assert len(open_before) == 1
    incident_id = open_before[0].id
    throttle = next(
        a for a in first.engine.actions.values() if a.kind is ActionKind.THROTTLE_CLIENT
    )
    assert throttle.state is ActionState.APPLIED
    config_versions = len(first.config.history)
    applied_notes = sum(1 for e in open_before[0].timeline if e.kind == "action_applied")
    first.close()

    second = DemoWorld(scenario, db_url=db_url, start_at=stop_at)
    restored = second.engine.incidents[incident_id]
    assert restored.is_open
    enforcer = second.engine.holders["shop"].enforcer
    assert scenario.flood_client in enforcer.policy.clients
    verdicts = [enforcer.decide(stop_at, "GET /search", scenario.flood_client) for _ in range(50)]
    assert any(v is not None and v.status == 429 for v in verdicts)
    assert enforcer.decide(stop_at, "GET /search", "client-001") is None
    asyncio.run(second.run(scenario.start + scenario.duration_s))
    restored = second.engine.incidents[incident_id]
    assert restored.state is IncidentState.RESOLVED
    throttles = [a for a in second.engine.actions.values() if a.kind is ActionKind.THROTTLE_CLIENT]
    assert [a.id for a in throttles] == [throttle.id]
    assert sum(1 for e in restored.timeline if e.kind == "action_applied") == applied_notes
    assert len(second.config.history) == config_versions
    assert len([i for i in second.engine.incidents.values() if i.id != incident_id]) == 0
    second.close()
