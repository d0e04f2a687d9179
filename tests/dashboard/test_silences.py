"""The silences page: what is muted and what it held back, a responder's silence form and
expire buttons (CSRF-checked, audited), and hostile strings shown as text."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from stanch.core.noise import MaintenanceWindow
from stanch.server import ServerContext

from .conftest import XSS, Clock, csrf_of, drive

PAGE = "/silences"


async def csrf(client: httpx.AsyncClient) -> str:
    return csrf_of((await client.get(PAGE)).text)


async def silence(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    data = {"matchers": "route=POST /pay", "duration": "1h", "comment": "load test"}
    return await client.post(PAGE, data={"csrf": await csrf(client), **data, **fields})


async def test_the_form_creates_a_silence_that_is_listed_and_audited(
    responder: httpx.AsyncClient, ctx: ServerContext, clock: Clock
) -> None:
    """One matcher per line, '=' or '!='; the silence is in force at once under the person's
    name, listed on the page with an expire button, and in the audit trail."""
    answer = await silence(responder, matchers="service=api\r\nroute != GET /ping\n\n")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == PAGE
    created = ctx.engine.noise.silences["S-0001"]
    assert [str(m) for m in created.matchers] == ["service=api", "route!=GET /ping"]
    assert (created.created_by, created.comment) == ("responder-person", "load test")
    assert created.ends_at == clock.t + 3600
    (entry,) = [e for e in ctx.store.audit_entries() if e.action.startswith("dashboard.sil")]
    assert (entry.action, entry.actor, entry.target) == (
        "dashboard.silences.create",
        "responder-person (responder)",
        "S-0001",
    )
    page = (await responder.get(PAGE)).text
    assert "S-0001 silences service=api, route!=GET /ping for 1h" in page  # the flash
    assert "<code>route!=GET /ping</code>" in page
    assert 'action="/silences/S-0001/expire"' in page


@pytest.mark.parametrize("given", [None, "", "forged"])
async def test_a_silence_without_the_sessions_csrf_token_is_refused(
    responder: httpx.AsyncClient, ctx: ServerContext, given: str | None
) -> None:
    data = {"matchers": "service=api", "comment": "x"}
    if given is not None:
        data["csrf"] = given
    answer = await responder.post(PAGE, data=data)
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert ctx.engine.noise.silences == {}


async def test_viewers_see_the_page_without_forms(
    viewer: httpx.AsyncClient, ctx: ServerContext
) -> None:
    """A viewer sees the silences in force but no form but sign-out, and may not post."""
    ctx.engine.add_silence(
        [("service", "api")], starts_at=ctx.now(), ends_at=ctx.now() + 60, created_by="x"
    )
    page = (await viewer.get(PAGE)).text
    assert "S-0001" in page
    assert page.count('method="post"') == 1  # sign out
    refused = await viewer.post(
        PAGE, data={"csrf": csrf_of(page), "matchers": "service=api", "comment": "x"}
    )
    assert refused.status_code == 403
    assert list(ctx.engine.noise.silences) == ["S-0001"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"matchers": "team=pay"}, "matcher 1: matcher field &#39;team&#39;"),
        ({"matchers": "service=api\nroute"}, "matcher 2: matcher &#39;route&#39; must read"),
        ({"matchers": "route!=GET /ping"}, "at least one positive matcher"),
        ({"matchers": "service=*"}, "at least one positive matcher"),
        ({"duration": "forever"}, "duration: expected a duration"),
        ({"duration": "9000h"}, "at most 365 days"),
        ({"comment": "  "}, "comment must not be empty"),
    ],
)
async def test_bad_silences_are_refused_with_the_reason(
    responder: httpx.AsyncClient, ctx: ServerContext, fields: dict[str, str], message: str
) -> None:
    answer = await silence(responder, **fields)
    assert answer.status_code == 400
    assert message in answer.text
    assert ctx.engine.noise.silences == {}


async def test_expire_buttons_end_silences_and_windows(
    responder: httpx.AsyncClient, ctx: ServerContext
) -> None:
    """Each button ends its rule now and is audited; a second press is a 409, not a crash."""
    await silence(responder)
    ctx.engine.add_maintenance(
        MaintenanceWindow("", "api", weekdays=(0,), start_minute=60, end_minute=120, comment="c")
    )
    token = await csrf(responder)
    page = (await responder.get(PAGE)).text
    assert 'action="/maintenance/M-0001/expire"' in page
    for path in ("/silences/S-0001/expire", "/maintenance/M-0001/expire"):
        answer = await responder.post(path, data={"csrf": token})
        assert answer.status_code == 303, (path, answer.text)
    assert ctx.engine.noise.silences == ctx.engine.noise.windows == {}
    assert [e.by for e in ctx.engine.noise.ended] == ["responder-person"] * 2
    actions = [e.action for e in ctx.store.audit_entries() if e.action.startswith("dashboard.")]
    assert actions[-2:] == ["dashboard.silences.expire", "dashboard.maintenance.expire"]
    again = await responder.post(
        "/silences/S-0001/expire", data={"csrf": token}, headers={"accept": "application/json"}
    )
    assert again.status_code == 409
    assert again.json() == {"ok": False, "message": "silence S-0001 has ended already"}
    page = (await responder.get(PAGE)).text
    assert "expired by responder-person" in page


async def test_held_back_alerts_are_listed_and_hostile_strings_are_text(
    responder: httpx.AsyncClient, ctx: ServerContext, clock: Clock, app: FastAPI
) -> None:
    """An error burst under a silence whose comment and matcher carry markup: the page lists
    the held-back alert with the silence's reason, every string escaped."""
    drive(ctx, clock, 40)
    answer = await silence(responder, matchers=f"service=api\nlabel:team!={XSS}", comment=XSS)
    assert answer.status_code == 303, answer.text
    drive(ctx, clock, 10, error_ratio=0.6)
    assert ctx.engine.incidents == {}
    assert ctx.engine.suppressed
    page = (await responder.get(PAGE)).text
    assert "<script>window" not in page
    escaped = "&lt;script&gt;window.__xss=1&lt;/script&gt;"
    assert f"silenced by S-0001 (responder-person: {escaped})" in page  # the reason
    assert f"<code>label:team!={escaped}</code>" in page
    assert "<strong>error_burst</strong> on <code>api</code> <code>POST /pay</code>" in page
    assert '<span class="badge">held</span>' in page


async def test_a_silence_matching_no_series_yet_flashes_a_warning(
    responder: httpx.AsyncClient, ctx: ServerContext
) -> None:
    """Created all the same (the route may have had no traffic yet), with a warning."""
    answer = await silence(responder, matchers="route=POST /checkout")
    assert answer.status_code == 303, answer.text
    assert "S-0001" in ctx.engine.noise.silences
    page = (await responder.get(PAGE)).text
    assert "(warning: route=POST /checkout matches no series seen so far" in page


async def test_a_route_without_its_method_is_refused(
    responder: httpx.AsyncClient, ctx: ServerContext
) -> None:
    answer = await silence(responder, matchers="route=/checkout")
    assert answer.status_code == 400
    assert "route names include the method" in answer.text
    assert ctx.engine.noise.silences == {}
