"""Auth: every route × every role, tokens (revoked, malformed), webhook signatures."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from stanch.server import ServerContext, create_app
from stanch.server.app import api_routes as all_routes
from stanch.server.app import permission_of
from stanch.server.auth import ROLES, Permission, Role, parse_token, sign

from .conftest import SECRETS
from .helpers import bearer

P = Permission
EXPECTED: dict[tuple[str, str], Permission] = {
    ("GET", "/api/v1/health"): P.PUBLIC,
    ("POST", "/api/v1/events"): P.INGEST,
    ("GET", "/api/v1/policy/{service}"): P.POLICY,
    ("GET", "/api/v1/agents"): P.READ,
    ("POST", "/api/v1/alertmanager"): P.INGEST,
    ("POST", "/api/v1/pagerduty/v2/enqueue"): P.INGEST,
    ("POST", "/api/v1/pagerduty/v2/change/enqueue"): P.INGEST,
    ("POST", "/api/v1/reports"): P.REPORT,
    ("POST", "/api/v1/changes"): P.INGEST,
    ("GET", "/api/v1/incidents"): P.READ,
    ("GET", "/api/v1/incidents/{incident_id}"): P.READ,
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): P.RESPOND,
    ("POST", "/api/v1/incidents/{incident_id}/comments"): P.RESPOND,
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): P.RESPOND,
    ("GET", "/api/v1/incidents/{incident_id}/postmortem"): P.READ,
    ("GET", "/api/v1/actions"): P.READ,
    ("GET", "/api/v1/actions/{action_id}"): P.READ,
    ("POST", "/api/v1/actions/{action_id}/approve"): P.RESPOND,
    ("POST", "/api/v1/actions/{action_id}/reject"): P.RESPOND,
    ("POST", "/api/v1/actions/{action_id}/revert"): P.RESPOND,
    ("GET", "/api/v1/silences"): P.READ,
    ("POST", "/api/v1/silences"): P.RESPOND,
    ("DELETE", "/api/v1/silences/{silence_id}"): P.RESPOND,
    ("GET", "/api/v1/maintenance"): P.READ,
    ("POST", "/api/v1/maintenance"): P.RESPOND,
    ("DELETE", "/api/v1/maintenance/{window_id}"): P.RESPOND,
    ("GET", "/api/v1/suppressed"): P.READ,
    ("GET", "/api/v1/runbook"): P.READ,
    ("POST", "/api/v1/runbook/validate"): P.READ,
    ("PUT", "/api/v1/runbook"): P.ADMIN,
    ("GET", "/api/v1/config/{service}/versions"): P.READ,
    ("GET", "/api/v1/config/{service}/diff"): P.READ,
    ("POST", "/api/v1/config/{service}"): P.ADMIN,
    ("POST", "/api/v1/config/{service}/rollback"): P.ADMIN,
    ("GET", "/api/v1/tokens"): P.ADMIN,
    ("POST", "/api/v1/tokens"): P.ADMIN,
    ("DELETE", "/api/v1/tokens/{token_id}"): P.ADMIN,
    ("GET", "/api/v1/audit"): P.ADMIN,
    ("GET", "/api/v1/audit/verify"): P.ADMIN,
}


def api_routes(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    return {(method, path): route for path, route in all_routes(app) for method in route.methods}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nothing-here", path)


def test_every_route_has_the_expected_permission(app: FastAPI) -> None:
    """The app's routes are exactly the table's, each guarded by the permission listed."""
    routes = api_routes(app)
    assert set(routes) == set(EXPECTED), "a route was added or removed: update EXPECTED"
    for key, route in routes.items():
        assert permission_of(route) is EXPECTED[key], key


async def test_roles_by_endpoints_matrix(
    app: FastAPI, client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """Every route × every role (and no token): 401 without one, 403 for a role the route's
    permission excludes, and neither (nor a 5xx) for a role it includes."""
    callers: list[tuple[Role | None, dict[str, str]]] = [(None, {})]
    callers += [(role, bearer(tokens[role])) for role in Role]
    for (method, path), route in sorted(api_routes(app).items()):
        permission = permission_of(route)
        assert permission is not None
        for role, headers in callers:
            body = {} if method in ("POST", "PUT") else None
            response = await client.request(method, concrete(path), json=body, headers=headers)
            where = f"{method} {path} as {role}"
            assert response.status_code < 500, where
            if permission is Permission.PUBLIC:
                assert response.status_code == 200, where
            elif role is None:
                assert response.status_code == 401, where
                assert response.headers["www-authenticate"] == "Bearer"
            elif role in ROLES[permission]:
                assert response.status_code not in (401, 403), where
            else:
                assert response.status_code == 403, where


def test_an_unguarded_route_is_refused(ctx: ServerContext) -> None:
    """create_app will not build an app with a route that declares no permission."""
    rogue = APIRouter()

    @rogue.get("/rogue")
    async def rogue_route() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="/api/v1/rogue declares no permission"):
        create_app(ctx, routers=[rogue])


async def test_openapi_lists_roles_per_operation(client: httpx.AsyncClient) -> None:
    """The OpenAPI document names each operation's roles, and the bearer scheme."""
    schema = (await client.get("/api/v1/openapi.json")).json()
    approve = schema["paths"]["/api/v1/actions/{action_id}/approve"]["post"]
    assert approve["x-stanch-roles"] == ["admin", "responder"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


async def test_revoked_and_malformed_tokens_are_401(
    client: httpx.AsyncClient, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """A revoked token stops working at once; a forged secret or a non-token string is 401."""
    viewer = tokens[Role.VIEWER]
    assert (await client.get("/api/v1/incidents", headers=bearer(viewer))).status_code == 200
    token_id, secret = parse_token(viewer) or ("", "")
    revoked = await client.delete(f"/api/v1/tokens/{token_id}", headers=bearer(tokens[Role.ADMIN]))
    assert revoked.json()["revoked_at"] is not None
    assert (await client.get("/api/v1/incidents", headers=bearer(viewer))).status_code == 401
    forged = f"stanch_{parse_token(tokens[Role.ADMIN])[0]}_{secret}"  # type: ignore[index]
    assert (await client.get("/api/v1/tokens", headers=bearer(forged))).status_code == 401
    assert (await client.get("/api/v1/tokens", headers=bearer("hunter2"))).status_code == 401


async def test_admin_creates_a_token_that_works_and_is_audited(
    client: httpx.AsyncClient, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """POST /tokens answers the secret once; it authenticates, and the audit names the admin."""
    created = await client.post(
        "/api/v1/tokens", json={"name": "ci", "role": "agent"}, headers=bearer(tokens[Role.ADMIN])
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    policy = await client.get("/api/v1/policy/api", headers=bearer(secret))
    assert policy.status_code == 200
    listed = await client.get("/api/v1/tokens", headers=bearer(tokens[Role.ADMIN]))
    assert all("token" not in t for t in listed.json())
    (entry,) = [e for e in ctx.store.audit_entries() if e.action == "token.create"]
    assert entry.actor == "admin (admin)"
    assert entry.after == {"name": "ci", "role": "agent"}


REPORT = {"service": "shop", "text": "checkout fails", "route": "POST /checkout"}


async def test_webhooks_accept_a_valid_signature_instead_of_a_token(
    client: httpx.AsyncClient, ctx: ServerContext
) -> None:
    """A report signed with the reports secret is accepted and audited as the signed source;
    a bad signature, or one under another source's secret, is 401."""
    raw = json.dumps(REPORT).encode()
    headers = {"Content-Type": "application/json"}
    good = sign(SECRETS["reports"], raw)
    ok = await client.post(
        "/api/v1/reports", content=raw, headers={**headers, "X-Stanch-Signature": good}
    )
    assert ok.status_code == 202, ok.text
    wrong = sign(SECRETS["alertmanager"], raw)
    refused = await client.post(
        "/api/v1/reports", content=raw, headers={**headers, "X-Stanch-Signature": wrong}
    )
    assert refused.status_code == 401
    tampered = await client.post(
        "/api/v1/reports",
        content=raw.replace(b"fails", b"works"),
        headers={**headers, "X-Stanch-Signature": good},
    )
    assert tampered.status_code == 401
    (entry,) = [e for e in ctx.store.audit_entries() if e.action == "ingest.report"]
    assert entry.actor == "reports (signed webhook)"


async def test_pagerduty_accepts_a_token_as_routing_key(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """An agent token as routing_key authenticates; a random routing key does not."""
    event = {
        "event_action": "trigger",
        "payload": {"summary": "db down", "source": "db1", "severity": "critical"},
    }
    ok = await client.post(
        "/api/v1/pagerduty/v2/enqueue", json={**event, "routing_key": tokens[Role.AGENT]}
    )
    assert ok.status_code == 202
    viewer = await client.post(
        "/api/v1/pagerduty/v2/enqueue", json={**event, "routing_key": tokens[Role.VIEWER]}
    )
    assert viewer.status_code == 403
    nope = await client.post(
        "/api/v1/pagerduty/v2/enqueue", json={**event, "routing_key": "R0UT1NGKEY"}
    )
    assert nope.status_code == 401
