"""Forms: CSRF on every POST, roles enforced, and each decision does what the API does."""

from __future__ import annotations

import httpx
import pytest

from stanch.core.actions import ActionState
from stanch.server import ServerContext

from .conftest import XSS, csrf_of

pytestmark = pytest.mark.usefixtures("incident_ctx")

APPROVE = "/actions/ACT-0001/approve"


async def csrf(client: httpx.AsyncClient, path: str = "/incidents/INC-0001") -> str:
    return csrf_of((await client.get(path)).text)


@pytest.mark.parametrize("given", [None, "", "forged"])
async def test_a_post_without_the_sessions_csrf_token_is_refused(
    responder: httpx.AsyncClient, incident_ctx: ServerContext, given: str | None
) -> None:
    """Missing, empty or wrong CSRF token: 403, and the action is still pending."""
    data = {} if given is None else {"csrf": given}
    answer = await responder.post(APPROVE, data=data)
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert incident_ctx.engine.actions["ACT-0001"].state is ActionState.PENDING


async def test_a_cross_site_post_is_refused_even_with_the_token(
    responder: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """A POST from another origin is refused whatever it carries (Origin, Sec-Fetch-Site)."""
    token = await csrf(responder)
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        answer = await responder.post(APPROVE, data={"csrf": token}, headers=headers)
        assert answer.status_code == 403
    assert incident_ctx.engine.actions["ACT-0001"].state is ActionState.PENDING


async def test_only_form_encoded_bodies_are_read(responder: httpx.AsyncClient) -> None:
    """JSON (or anything but a form) is not a form: 415."""
    answer = await responder.post(APPROVE, json={"csrf": await csrf(responder)})
    assert answer.status_code == 415


async def test_a_viewer_cannot_decide(
    viewer: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """A viewer with a valid session and CSRF token still gets 403."""
    answer = await viewer.post(APPROVE, data={"csrf": await csrf(viewer)})
    assert answer.status_code == 403
    assert incident_ctx.engine.actions["ACT-0001"].state is ActionState.PENDING


async def test_approving_applies_the_action_and_is_audited(
    responder: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """A plain form post approves (applied at once), goes back to the page with a message,
    and leaves a dashboard audit entry naming the person."""
    answer = await responder.post(
        APPROVE, data={"csrf": await csrf(responder), "next": "/incidents/INC-0001"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/incidents/INC-0001"
    action = incident_ctx.engine.actions["ACT-0001"]
    assert action.state is ActionState.APPLIED
    assert action.decided_by == "responder-person"
    (entry,) = [e for e in incident_ctx.store.audit_entries() if e.action.startswith("dashboard.a")]
    assert entry.action == "dashboard.actions.approve"
    assert entry.actor == "responder-person (responder)"
    assert entry.after == {"state": "applied"}
    page = (await responder.get("/incidents/INC-0001")).text
    assert "is now applied" in page  # the flash message
    assert 'action="/actions/ACT-0001/revert"' in page


async def test_scripts_get_json_answers(
    responder: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """The page's script asks for JSON: ok and a message, or the refusal's reason."""
    token = await csrf(responder)
    headers = {"accept": "application/json"}
    ok = await responder.post(APPROVE, data={"csrf": token}, headers=headers)
    assert ok.status_code == 200
    assert ok.json() == {"ok": True, "message": ok.json()["message"]}
    assert "applied" in ok.json()["message"]
    again = await responder.post(APPROVE, data={"csrf": token}, headers=headers)
    assert again.status_code == 409
    assert again.json()["ok"] is False
    reverted = await responder.post(
        "/actions/ACT-0001/revert", data={"csrf": token, "reason": "done"}, headers=headers
    )
    assert reverted.status_code == 200
    assert incident_ctx.engine.actions["ACT-0001"].state is ActionState.REVERTED


async def test_acknowledge_comment_and_resolve(
    responder: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """Acknowledge takes ownership, a comment lands on the timeline, resolve ends the
    incident with its resolution and expires the pending breaker."""
    token = await csrf(responder)
    base = "/incidents/INC-0001"
    assert (await responder.post(f"{base}/acknowledge", data={"csrf": token})).status_code == 303
    assert (
        await responder.post(f"{base}/comments", data={"csrf": token, "text": "looking"})
    ).status_code == 303
    empty = await responder.post(f"{base}/comments", data={"csrf": token, "text": "  "})
    assert empty.status_code == 400
    resolved = await responder.post(
        f"{base}/resolve", data={"csrf": token, "resolution": "timeout restored"}
    )
    assert resolved.status_code == 303
    incident = incident_ctx.engine.incidents["INC-0001"]
    assert incident.acknowledged_by == "responder-person"
    assert any(e.kind == "comment" and e.text == "looking" for e in incident.timeline)
    assert incident.state == "resolved"
    assert incident.resolution == "timeout restored"
    assert incident_ctx.engine.actions["ACT-0001"].state is ActionState.EXPIRED


async def test_the_postmortem_is_editable_once_resolved(
    responder: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """Before resolution the draft follows the timeline (409 on edit); after, the edit is
    saved, marked with its author, and previewed with markup as text."""
    token = await csrf(responder)
    path = "/incidents/INC-0001/postmortem"
    early = await responder.post(path, data={"csrf": token, "markdown": "# mine"})
    assert early.status_code == 409
    incident_ctx.engine.resolve("INC-0001", actor="r", now=incident_ctx.now())
    text = f"# Post-mortem\n\nRoot cause: the timeout. {XSS}\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n"
    saved = await responder.post(path, data={"csrf": token, "markdown": text})
    assert saved.status_code == 303
    stored = incident_ctx.store.get_postmortem("INC-0001")
    assert stored is not None
    assert stored[0] == text
    assert stored[1]["edited_by"] == "responder-person"
    page = (await responder.get("/incidents/INC-0001")).text
    assert "Root cause: the timeout. &lt;script&gt;" in page
    assert 'class="align-right"' in page
    assert "style=" not in page


async def test_the_runbook_is_replaced_only_when_valid(
    admin: httpx.AsyncClient, responder: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """An admin's broken runbook is refused with each problem at its line (the text kept in
    the form); a valid one is checked, then replaced; a responder may not replace it."""
    token = await csrf(admin, "/runbook")
    broken = "version: 1\nrules:\n  - name: x\n    match: {kinds: [bogus]}\n    actions: []\n"
    refused = await admin.post("/runbook", data={"csrf": token, "text": broken, "op": "replace"})
    assert refused.status_code == 400
    assert 'href="#L4">line 4</a>' in refused.text
    assert '<li id="L4" class="has-problem">' in refused.text
    assert "bogus" in refused.text
    assert [r.name for r in incident_ctx.engine.runbook.rules] == ["pay-errors"]
    good = "version: 1\nrules:\n  - name: all-errors\n    match: {kinds: [error_burst]}\n"
    good += "    actions:\n      - {kind: circuit_break, mode: approve}\n"
    checked = await admin.post("/runbook", data={"csrf": token, "text": good, "op": "check"})
    assert checked.status_code == 200
    assert "Checked: valid, 1 rule(s)" in checked.text
    assert [r.name for r in incident_ctx.engine.runbook.rules] == ["pay-errors"]
    replaced = await admin.post("/runbook", data={"csrf": token, "text": good, "op": "replace"})
    assert replaced.status_code == 303
    assert [r.name for r in incident_ctx.engine.runbook.rules] == ["all-errors"]
    forbidden = await responder.post(
        "/runbook", data={"csrf": await csrf(responder, "/runbook"), "text": good}
    )
    assert forbidden.status_code == 403


async def test_config_diff_and_rollback(
    admin: httpx.AsyncClient, incident_ctx: ServerContext
) -> None:
    """The service page diffs two versions; an admin's rollback writes a new version holding
    the old values, and is audited."""
    diff = (await admin.get("/config/api?from=1&to=2")).text
    assert "<code>2000</code>" in diff
    assert "<code>80</code>" in diff
    token = await csrf(admin, "/config/api")
    answer = await admin.post(
        "/config/api/rollback", data={"csrf": token, "to_version": "1", "reason": "undo"}
    )
    assert answer.status_code == 303
    current = incident_ctx.engine.config_stores["api"].current
    assert current.version == 3
    assert current.values["pay.timeout_ms"] == 2000
    assert any(e.action == "dashboard.config.rollback" for e in incident_ctx.store.audit_entries())
    bad = await admin.post("/config/api/rollback", data={"csrf": token, "to_version": "x"})
    assert bad.status_code == 400


async def test_audit_log_filters_and_verifies_the_chain(
    admin: httpx.AsyncClient, responder: httpx.AsyncClient
) -> None:
    """Admins see the chain's status and can filter entries by action and actor."""
    await responder.post(APPROVE, data={"csrf": await csrf(responder)})
    page = (await admin.get("/audit?action=dashboard&actor=responder")).text
    assert "Intact:" in page
    assert "dashboard.actions.approve" in page
    assert "engine.timeline" not in page
