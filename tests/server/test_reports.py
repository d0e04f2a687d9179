"""User reports over HTTP: grouped per service and route, graded by distinct reporters,
correlated with other alerts, and resolved when they go quiet."""

from __future__ import annotations

import httpx

from stanch.server import ServerContext
from stanch.server.auth import Role

from .helpers import Clock, bearer


def report(reporter: str, route: str = "POST /checkout", text: str = "checkout fails") -> dict:  # type: ignore[type-arg]
    return {"service": "shop", "text": text, "route": route, "reporter": reporter}


async def test_reports_on_one_route_make_one_alert_whose_severity_grows(
    client: httpx.AsyncClient, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """Three people make one SEV3 alert with a count; five raise the incident to SEV2; the
    same person twice counts once."""
    headers = bearer(tokens[Role.RESPONDER])
    answers = []
    for who in ("ann", "bob", "ann", "cyd"):
        response = await client.post("/api/v1/reports", json=report(who), headers=headers)
        assert response.status_code == 202, response.text
        answers.append(response.json())
    assert [a["severity"] for a in answers] == ["SEV4", "SEV3", "SEV3", "SEV3"]
    assert answers[-1]["reports"] == 4
    assert answers[-1]["reporters"] == 3
    assert len({a["fingerprint"] for a in answers}) == 1
    (incident,) = ctx.engine.incidents.values()
    assert incident.severity.value == "SEV3"
    for who in ("dan", "eve"):
        await client.post("/api/v1/reports", json=report(who), headers=headers)
    assert incident.severity.value == "SEV2"
    (alert,) = incident.alerts.values()
    assert alert.kind.value == "user_report"
    assert "6 user reports from 5 people" in alert.explanation


async def test_a_report_joins_the_incident_already_open_on_its_route(
    client: httpx.AsyncClient, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """A report on a route an external alert already made an incident of joins that incident."""
    page = {
        "routing_key": "k",
        "event_action": "trigger",
        "payload": {
            "summary": "checkout errors",
            "source": "prom",
            "severity": "error",
            "component": "POST /checkout",
            "group": "shop",
        },
    }
    paged = await client.post(
        "/api/v1/pagerduty/v2/enqueue", json=page, headers=bearer(tokens[Role.AGENT])
    )
    assert paged.status_code == 202
    reported = await client.post(
        "/api/v1/reports", json=report("ann"), headers=bearer(tokens[Role.AGENT])
    )
    (incident,) = ctx.engine.incidents.values()
    assert reported.json()["incident"] == incident.id
    assert {a.kind.value for a in incident.alerts.values()} == {"external", "user_report"}


async def test_quiet_reports_resolve_their_alert(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """After report_quiet_s without a new report, the step loop resolves the report alert;
    a later report opens a fresh group."""
    await client.post("/api/v1/reports", json=report("ann"), headers=bearer(tokens[Role.AGENT]))
    (incident,) = ctx.engine.incidents.values()
    clock.t += ctx.settings.report_quiet_s + 1
    ctx.step()
    (alert,) = incident.alerts.values()
    assert not alert.is_firing
    assert ctx.reports.groups == {}
    again = await client.post(
        "/api/v1/reports", json=report("bob"), headers=bearer(tokens[Role.AGENT])
    )
    assert again.json()["reports"] == 1


async def test_viewers_may_not_report(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    """Reporting changes state: a viewer token is 403."""
    response = await client.post(
        "/api/v1/reports", json=report("ann"), headers=bearer(tokens[Role.VIEWER])
    )
    assert response.status_code == 403
