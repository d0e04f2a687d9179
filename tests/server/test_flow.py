"""End to end over HTTP: events open an incident, a responder approves the breaker, the
policy changes for agents, and the audit log names who did what."""

from __future__ import annotations

import httpx

from stanch.core.audit import verify
from stanch.server import ServerContext
from stanch.server.auth import Role

from .helpers import Clock, bearer, drive


async def open_incident(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> dict:  # type: ignore[type-arg]
    await drive(client, ctx, clock, tokens[Role.AGENT], 40)
    await drive(client, ctx, clock, tokens[Role.AGENT], 8, error_ratio={"POST /pay": 0.5})
    listed = await client.get("/api/v1/incidents?open=true", headers=bearer(tokens[Role.VIEWER]))
    assert listed.status_code == 200
    (incident,) = listed.json()
    return incident  # type: ignore[no-any-return]


async def test_error_burst_over_http_opens_an_incident(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """Batches with an error burst on POST /pay open one incident on that route."""
    incident = await open_incident(client, ctx, clock, tokens)
    assert incident["routes"] == ["POST /pay"]
    assert incident["state"] == "detected"
    shown = await client.get(
        f"/api/v1/incidents/{incident['id']}", headers=bearer(tokens[Role.VIEWER])
    )
    assert shown.status_code == 200
    body = shown.json()
    assert body["alerts"][0]["kind"] == "error_burst"
    assert [a["state"] for a in body["actions"]] == ["pending"]


async def test_approve_over_http_applies_the_action_and_is_audited(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A responder's approval applies the breaker at once, bumps the policy for agents, and
    lands in the audit log under the token's name; the chain stays intact."""
    incident = await open_incident(client, ctx, clock, tokens)
    actions = await client.get(
        f"/api/v1/actions?incident={incident['id']}", headers=bearer(tokens[Role.VIEWER])
    )
    (action,) = actions.json()
    before = await client.get("/api/v1/policy/api", headers=bearer(tokens[Role.AGENT]))
    approved = await client.post(
        f"/api/v1/actions/{action['id']}/approve",
        json={"reason": "payments confirmed broken"},
        headers=bearer(tokens[Role.RESPONDER]),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "applied"
    assert approved.json()["decided_by"] == "responder"
    after = await client.get("/api/v1/policy/api", headers=bearer(tokens[Role.AGENT]))
    assert int(after.headers["etag"].strip('"')) > int(before.headers["etag"].strip('"'))
    assert "POST /pay" in after.json()["routes"]
    entries = ctx.store.audit_entries()
    mine = [e for e in entries if e.action == "api.actions.approve"]
    assert len(mine) == 1
    assert mine[0].actor == "responder (responder)"
    assert mine[0].target == action["id"]
    assert mine[0].before == {"state": "pending"}
    assert mine[0].after == {"state": "applied"}
    assert mine[0].why == "payments confirmed broken"
    engine_side = [e for e in entries if e.action == "engine.action" and e.target == action["id"]]
    assert [e.after for e in engine_side][-2:] == ["approved", "applied"]
    assert verify(entries) == []


async def test_acknowledge_comment_resolve_and_postmortem(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A responder acknowledges, comments and resolves; the post-mortem is then saved."""
    incident = await open_incident(client, ctx, clock, tokens)
    url = f"/api/v1/incidents/{incident['id']}"
    headers = bearer(tokens[Role.RESPONDER])
    acked = await client.post(f"{url}/acknowledge", headers=headers)
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "responder"
    commented = await client.post(f"{url}/comments", json={"text": "looking"}, headers=headers)
    assert commented.json()["timeline"][-1]["text"] == "looking"
    draft = await client.get(f"{url}/postmortem", headers=bearer(tokens[Role.VIEWER]))
    assert draft.json()["saved"] is False
    resolved = await client.post(f"{url}/resolve", json={"resolution": "fixed"}, headers=headers)
    assert resolved.json()["state"] == "resolved"
    again = await client.post(f"{url}/resolve", json={}, headers=headers)
    assert again.status_code == 409
    saved = await client.get(f"{url}/postmortem", headers=bearer(tokens[Role.VIEWER]))
    assert saved.json()["saved"] is True
    assert incident["id"] in saved.json()["markdown"]
