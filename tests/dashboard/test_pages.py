"""Every page renders for every role; buttons only for those who may press them; every
user-controlled string comes out as text; the API keeps its own answers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from stanch.server import ServerContext
from stanch.server.auth import Role
from stanch.server.dashboard.site import CSP

from .conftest import XSS, Clock, csrf_of

PAGES = [
    "/",
    "/incidents/INC-0001",
    "/knowledge",
    "/knowledge?q=pay&severity=SEV1",
    "/runbook",
    "/config",
    "/config/api",
    "/config/api?from=1&to=2",
    "/silences",
]
BUTTONS = ("/approve", "/reject", "/revert", "/acknowledge", "/resolve", "/comments", "/rollback")


@pytest.fixture
def signed_in(
    incident_ctx: ServerContext,
    viewer: httpx.AsyncClient,
    responder: httpx.AsyncClient,
    admin: httpx.AsyncClient,
) -> dict[Role, httpx.AsyncClient]:
    return {Role.VIEWER: viewer, Role.RESPONDER: responder, Role.ADMIN: admin}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER, Role.ADMIN])
async def test_every_page_renders_for_every_role(
    signed_in: dict[Role, httpx.AsyncClient], role: Role
) -> None:
    """All pages answer 200 HTML for anyone signed in; the audit log only for admins."""
    client = signed_in[role]
    for path in PAGES:
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert answer.headers["content-type"].startswith("text/html")
    audit = await client.get("/audit")
    assert audit.status_code == (200 if role is Role.ADMIN else 403)


async def test_viewers_see_no_action_buttons(signed_in: dict[Role, httpx.AsyncClient]) -> None:
    """A viewer's overview and incident page have no form that changes anything (only the
    sign-out form); a responder's have approve, reject, acknowledge, resolve and comment."""
    for path in ("/", "/incidents/INC-0001", "/config/api", "/runbook"):
        page = (await signed_in[Role.VIEWER].get(path)).text
        for action in BUTTONS:
            assert f'{action}"' not in page, (path, action)
        assert page.count('method="post"') == 1  # sign out
    page = (await signed_in[Role.RESPONDER].get("/incidents/INC-0001")).text
    for action in ("/approve", "/reject", "/acknowledge", "/resolve", "/comments"):
        assert f'{action}"' in page
    assert 'action="/runbook"' not in (await signed_in[Role.RESPONDER].get("/runbook")).text
    assert 'action="/runbook"' in (await signed_in[Role.ADMIN].get("/runbook")).text


async def test_hostile_strings_render_as_text(
    signed_in: dict[Role, httpx.AsyncClient], incident_ctx: ServerContext, app: FastAPI
) -> None:
    """A route, a config change's reason, a comment and a report carrying markup are shown
    escaped on every page that shows them: the markup never reaches the browser as markup."""
    responder = signed_in[Role.RESPONDER]
    page = (await responder.get("/incidents/INC-0001")).text
    posted = await responder.post(
        "/incidents/INC-0001/comments", data={"csrf": csrf_of(page), "text": XSS + "<b>hi</b>"}
    )
    assert posted.status_code == 303
    incident_ctx.engine.comment("INC-0001", '"><img src=x onerror=alert(1)>', actor=XSS, now=0)
    for path in ("/", "/incidents/INC-0001", "/config/api", "/knowledge?q=script"):
        html = (await responder.get(path)).text
        assert "<script>window" not in html, path
        assert "<img src=x" not in html, path
        assert "<b>hi</b>" not in html, path
    incident = (await responder.get("/incidents/INC-0001")).text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in incident  # the comment, as text
    overview = (await responder.get("/")).text
    assert "GET /items/&lt;script&gt;window.__xss=1&lt;/script&gt;" in overview  # the route
    charts = await responder.get("/incidents/INC-0001/charts.json")
    assert charts.headers["content-type"] == "application/json"


async def test_every_answer_carries_a_strict_content_security_policy(
    signed_in: dict[Role, httpx.AsyncClient], anonymous: httpx.AsyncClient
) -> None:
    """Pages, JSON, static files and the sign-in form forbid inline scripts and framing;
    private answers are never cached."""
    client = signed_in[Role.VIEWER]
    for answer in (
        await client.get("/"),
        await client.get("/overview.json"),
        await client.get("/static/app.js"),
        await anonymous.get("/login"),
    ):
        assert answer.status_code == 200
        assert answer.headers["content-security-policy"] == CSP
        assert "'unsafe-inline'" not in CSP
        assert "script-src 'self'" in CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    assert (await client.get("/")).headers["cache-control"] == "no-store"
    assert "max-age" in (await client.get("/static/app.js")).headers["cache-control"]


async def test_pages_have_no_inline_script_or_style(
    signed_in: dict[Role, httpx.AsyncClient],
) -> None:
    """What the CSP forbids is not in the markup either: scripts come from /static only."""
    for path in PAGES:
        html = (await signed_in[Role.ADMIN].get(path)).text
        assert "<script>" not in html
        assert " style=" not in html
        assert "<style" not in html
        assert "onclick" not in html.lower()


async def test_the_api_keeps_its_own_answers(
    signed_in: dict[Role, httpx.AsyncClient], anonymous: httpx.AsyncClient
) -> None:
    """The dashboard hangs under every path but the API's and /metrics: those keep their JSON
    404, 405 and 401 answers."""
    missing = await anonymous.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    wrong = await anonymous.delete("/api/v1/incidents")
    assert wrong.status_code == 405
    assert (await anonymous.get("/metrics")).status_code == 401
    page = await signed_in[Role.VIEWER].get("/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")


async def test_an_unknown_incident_is_a_404_page(signed_in: dict[Role, httpx.AsyncClient]) -> None:
    """An incident id that names nothing gets the dashboard's 404 page."""
    answer = await signed_in[Role.VIEWER].get("/incidents/INC-9999")
    assert answer.status_code == 404
    assert "INC-9999 does not exist" in answer.text


async def test_overview_lists_the_incident_the_pending_action_and_health(
    signed_in: dict[Role, httpx.AsyncClient],
) -> None:
    """The overview names the open incident, the action waiting for approval, and marks the
    failing route as failing."""
    html = (await signed_in[Role.RESPONDER].get("/")).text
    assert 'href="/incidents/INC-0001"' in html
    assert "circuit_break" in html
    assert 'action="/actions/ACT-0001/approve"' in html
    assert 'class="row-failing"' in html
    assert "<code>POST /pay</code>" in html


async def test_knowledge_base_finds_incidents_by_text_and_label(
    signed_in: dict[Role, httpx.AsyncClient], incident_ctx: ServerContext
) -> None:
    """Text matches every word anywhere in an incident (here its resolution); labels must all
    match; a miss says so."""
    incident_ctx.engine.resolve("INC-0001", actor="r", now=0, resolution="payment timeout fixed")
    client = signed_in[Role.VIEWER]
    found = (await client.get("/knowledge?q=payment+timeout&route=POST+/pay")).text
    assert "1 match" in found
    assert "INC-0001" in found
    missed = (await client.get("/knowledge?q=payment&severity=SEV4")).text
    assert "0 matches" in missed
    assert "INC-0001" not in missed.split("matches")[1]


async def test_overview_says_when_a_services_agents_lost_events(
    signed_in: dict[Role, httpx.AsyncClient], incident_ctx: ServerContext, clock: Clock
) -> None:
    """Charts of a service whose agents dropped events undercount: the overview says so, with
    the total and how long ago; a service whose agents lost nothing shows no such badge."""
    client = signed_in[Role.VIEWER]
    incident_ctx.agents.heard("api", "web-1", 0, clock.t)
    assert "agents lost" not in (await client.get("/")).text
    incident_ctx.agents.heard("api", "web-1", 1234, clock.t - 120)
    html = (await client.get("/")).text
    assert "agents lost 1,234 events, last reported 2 min ago" in html
