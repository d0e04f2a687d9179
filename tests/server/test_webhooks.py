"""Alertmanager and PagerDuty over HTTP: idempotent snapshots, PagerDuty's dedup rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stanch.server import ServerContext
from stanch.server.auth import Role

from .helpers import Clock, bearer

ZERO = "0001-01-01T00:00:00Z"


def snapshot(status: str, ends: str = ZERO, **extra: Any) -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {
            "alertname": "CheckoutErrors",
            "service": "shop",
            "route": "POST /checkout",
            "severity": "critical",
        },
        "annotations": {"summary": "checkout 5xx above 5%"},
        "startsAt": "2027-01-15T08:00:00.123456789Z",
        "endsAt": ends,
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "c0ffee0123456789",
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutErrors"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "stanch",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
        **extra,
    }


@pytest.fixture
def agent(tokens: dict[Role, str]) -> dict[str, str]:
    return bearer(tokens[Role.AGENT])


async def test_alertmanager_snapshot_twice_opens_one_incident_and_resolves_it(
    client: httpx.AsyncClient, ctx: ServerContext, agent: dict[str, str]
) -> None:
    """An HA pair's two deliveries open one incident; the resolved snapshot (also twice)
    resolves its alert once."""
    first = await client.post("/api/v1/alertmanager", json=snapshot("firing"), headers=agent)
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    (incident_id,) = first.json()["incidents"]
    incident = ctx.engine.incidents[incident_id]
    entries = len(incident.timeline)
    second = await client.post("/api/v1/alertmanager", json=snapshot("firing"), headers=agent)
    assert second.json() == {"accepted": 0, "duplicates": 1, "incidents": []}
    assert len(ctx.engine.incidents) == 1
    assert len(incident.timeline) == entries
    (alert,) = incident.alerts.values()
    assert (alert.kind.value, alert.service, alert.route) == ("external", "shop", "POST /checkout")
    assert alert.severity.value == "SEV1"
    resolved = snapshot("resolved", ends="2027-01-15T08:10:00Z")
    for expected in (1, 0):
        answer = await client.post("/api/v1/alertmanager", json=resolved, headers=agent)
        assert answer.json()["accepted"] == expected
    (alert,) = incident.alerts.values()
    assert not alert.is_firing
    assert [e.kind for e in incident.timeline].count("alert_cleared") == 1


async def test_grafana_extra_fields_are_tolerated(
    client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    """Grafana's envelope (version 1, orgId, values...) is accepted like Alertmanager's."""
    body = snapshot("firing", orgId=1, title="[FIRING:1]", state="alerting")
    body["version"] = "1"
    body["alerts"][0]["values"] = {"B": 0.12}
    body["alerts"][0]["silenceURL"] = "http://grafana/silence"
    response = await client.post("/api/v1/alertmanager", json=body, headers=agent)
    assert response.status_code == 200, response.text


async def test_alertmanager_refuses_bad_times(
    client: httpx.AsyncClient, ctx: ServerContext, agent: dict[str, str]
) -> None:
    """A startsAt that is no time is a 422 naming the field; one shaped like a time but
    impossible (month 13) is a 400 naming it; nothing is taken either way."""
    body = snapshot("firing")
    body["alerts"][0]["startsAt"] = "yesterday"
    response = await client.post("/api/v1/alertmanager", json=body, headers=agent)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "alerts", 0, "startsAt"]
    body["alerts"][0]["startsAt"] = "2027-13-01T00:00:00Z"
    response = await client.post("/api/v1/alertmanager", json=body, headers=agent)
    assert response.status_code == 400
    assert "alerts.0.startsAt: not a valid time" in response.json()["detail"]
    assert ctx.engine.incidents == {}


def trigger(**extra: Any) -> dict[str, Any]:
    return {
        "routing_key": "team-payments",
        "event_action": "trigger",
        "payload": {
            "summary": "payment gateway timeouts",
            "source": "pay-gw-1",
            "severity": "error",
            "component": "POST /pay",
            "custom_details": {"service": "api", "p99": 2.5},
        },
        **extra,
    }


def follow_up(action: str, key: str) -> dict[str, Any]:
    return {"routing_key": "team-payments", "event_action": action, "dedup_key": key}


async def test_pagerduty_trigger_ack_resolve_follow_its_dedup_rules(
    client: httpx.AsyncClient, ctx: ServerContext, agent: dict[str, str]
) -> None:
    """Trigger without a key gets one; the same key updates; acknowledge acknowledges the
    incident; resolve resolves the alert; a second resolve is dropped; the key then opens a
    new alert."""
    url = "/api/v1/pagerduty/v2/enqueue"
    first = await client.post(url, json=trigger(), headers=agent)
    assert first.status_code == 202
    key = first.json()["dedup_key"]
    assert first.json() == {"status": "success", "message": "Event processed", "dedup_key": key}
    (incident,) = ctx.engine.incidents.values()
    assert incident.routes == {"POST /pay"}
    (fp,) = incident.alerts
    again = await client.post(url, json=trigger(dedup_key=key), headers=agent)
    assert again.json()["dedup_key"] == key
    assert list(incident.alerts) == [fp]
    acked = await client.post(url, json=follow_up("acknowledge", key), headers=agent)
    assert acked.status_code == 202
    assert incident.state.value == "acknowledged"
    assert incident.acknowledged_by == "agent"
    await client.post(url, json=follow_up("resolve", key), headers=agent)
    assert not incident.alerts[fp].is_firing
    cleared = [e.kind for e in incident.timeline].count("alert_cleared")
    dropped = await client.post(url, json=follow_up("resolve", key), headers=agent)
    assert dropped.status_code == 202
    assert [e.kind for e in incident.timeline].count("alert_cleared") == cleared
    await client.post(url, json=trigger(dedup_key=key), headers=agent)
    fingerprints = {f for i in ctx.engine.incidents.values() for f in i.alerts}
    assert len(fingerprints) == 2


async def test_pagerduty_unknown_keys_are_dropped_with_202(
    client: httpx.AsyncClient, ctx: ServerContext, agent: dict[str, str]
) -> None:
    """Acknowledge or resolve of a key never triggered changes nothing, answered 202."""
    for action in ("acknowledge", "resolve"):
        response = await client.post(
            "/api/v1/pagerduty/v2/enqueue", json=follow_up(action, "nope"), headers=agent
        )
        assert response.status_code == 202
    assert ctx.engine.incidents == {}
    assert [e.action for e in ctx.store.audit_entries() if e.action.startswith("ingest")] == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"routing_key": "k", "event_action": "trigger"}, "payload is required"),
        ({"routing_key": "k", "event_action": "resolve"}, "dedup_key is required"),
        ({"routing_key": "k", "event_action": "explode", "dedup_key": "x"}, "event_action"),
        (trigger(payload={"summary": "x", "source": "y", "severity": "fatal"}), "severity"),
        (trigger(dedup_key="k" * 256), "dedup_key"),
    ],
)
async def test_pagerduty_invalid_events_are_400_in_its_shape(
    client: httpx.AsyncClient, agent: dict[str, str], body: dict[str, Any], needle: str
) -> None:
    """Invalid events answer PagerDuty's 400 'invalid event' with the problem listed."""
    response = await client.post("/api/v1/pagerduty/v2/enqueue", json=body, headers=agent)
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "invalid event"
    assert any(needle in line for line in answer["errors"])


async def test_pagerduty_limit_is_512_kb(client: httpx.AsyncClient, agent: dict[str, str]) -> None:
    """A body over PagerDuty's 512 KB limit is 413, though under the general 1 MiB."""
    body = trigger()
    body["payload"]["custom_details"] = {"blob": "x" * (600 * 1024)}
    response = await client.post("/api/v1/pagerduty/v2/enqueue", json=body, headers=agent)
    assert response.status_code == 413


async def test_pagerduty_change_events_become_changes(
    client: httpx.AsyncClient, ctx: ServerContext, agent: dict[str, str]
) -> None:
    """A change event is recorded once (retries dedupe) with its service and version."""
    body = {
        "routing_key": "team-payments",
        "payload": {
            "summary": "deploy api 2.4.1",
            "source": "ci",
            "timestamp": "2027-01-15T07:55:00+0000",
            "custom_details": {"service": "api", "version": "2.4.1", "routes": ["POST /pay"]},
        },
    }
    for _ in range(2):
        response = await client.post(
            "/api/v1/pagerduty/v2/change/enqueue", json=body, headers=agent
        )
        assert response.status_code == 202
        assert response.json()["message"] == "Change event processed"
    (change,) = ctx.store.list_changes(service="api")
    assert (change.version, change.routes, change.kind.value) == ("2.4.1", ("POST /pay",), "deploy")


async def test_changes_endpoint_records_a_deploy(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, agent: dict[str, str]
) -> None:
    """POST /changes records the change for root-cause ranking; unknown fields are 422."""
    body = {"service": "api", "kind": "deploy", "summary": "api 2.5.0", "version": "2.5.0"}
    response = await client.post("/api/v1/changes", json=body, headers=agent)
    assert response.status_code == 202
    assert response.json()["id"] in ctx.engine.changes
    extra = await client.post("/api/v1/changes", json={**body, "colour": "red"}, headers=agent)
    assert extra.status_code == 422
