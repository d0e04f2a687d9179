"""Signing in and out: a token becomes an HTTP-only, SameSite=Strict session cookie."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from stanch.server import ServerContext
from stanch.server.auth import Role
from stanch.server.dashboard.sessions import LOGIN_COOKIE, SESSION_COOKIE
from stanch.server.dashboard.web import local_path

from .conftest import T0, csrf_of, sign_in


async def test_signing_in_sets_an_http_only_strict_session_cookie(
    anonymous: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """A valid token is answered with a redirect and a session cookie the page's scripts
    cannot read, sent only to this site; the token itself is not in the cookie."""
    answer = await sign_in(anonymous, tokens[Role.VIEWER], "/knowledge")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/knowledge"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http here; https gets Secure (next test)
    assert tokens[Role.VIEWER] not in cookie
    page = await anonymous.get("/")
    assert page.status_code == 200
    assert "viewer-person" in page.text


async def test_the_cookie_is_secure_over_https(app: FastAPI, tokens: dict[Role, str]) -> None:
    """Served over HTTPS, the session cookie is marked Secure."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://stanch.test") as client:
        answer = await sign_in(client, tokens[Role.VIEWER])
    cookie = next(c for c in answer.headers.get_list("set-cookie") if SESSION_COOKIE in c)
    assert "secure" in cookie.lower()


async def test_pages_need_a_session(anonymous: httpx.AsyncClient) -> None:
    """Without a session every page sends the browser to sign in, keeping where it was going;
    the live and chart endpoints answer 401 JSON."""
    answer = await anonymous.get("/incidents/INC-0001")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/incidents/INC-0001"
    live = await anonymous.get("/live")
    assert live.status_code == 401
    assert live.json()["ok"] is False


@pytest.mark.parametrize("role", [None, Role.AGENT])
async def test_a_bad_token_or_an_agent_token_cannot_sign_in(
    anonymous: httpx.AsyncClient, tokens: dict[Role, str], role: Role | None
) -> None:
    """A wrong token, and an agent's token (agents have no read permission), get the form
    again with a 401 and no session."""
    token = tokens[role] if role else "stanch_nope_nope"
    answer = await sign_in(anonymous, token)
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert SESSION_COOKIE not in anonymous.cookies


async def test_signing_in_needs_the_forms_csrf_nonce(
    anonymous: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """The sign-in form carries a nonce that must match its cookie (login CSRF)."""
    await anonymous.get("/login")
    answer = await anonymous.post(
        "/login", data={"csrf": "forged", "token": tokens[Role.ADMIN], "next": "/"}
    )
    assert answer.status_code == 403
    assert SESSION_COOKIE not in anonymous.cookies


async def test_a_cross_site_sign_in_is_refused(
    anonymous: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """A POST the browser marks as cross-site is refused before anything else."""
    await anonymous.get("/login")
    nonce = anonymous.cookies.get(LOGIN_COOKIE)
    answer = await anonymous.post(
        "/login",
        data={"csrf": nonce, "token": tokens[Role.ADMIN]},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert answer.status_code == 403


async def test_signing_out_ends_the_session(viewer: httpx.AsyncClient) -> None:
    """Sign-out (with the session's CSRF token) ends the session on the server."""
    page = await viewer.get("/")
    stolen = viewer.cookies.get(SESSION_COOKIE)
    answer = await viewer.post("/logout", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    viewer.cookies.set(SESSION_COOKIE, stolen or "")
    again = await viewer.get("/")
    assert again.status_code == 303  # the old cookie no longer opens anything


async def test_revoking_the_token_ends_its_sessions(
    viewer: httpx.AsyncClient, ctx: ServerContext
) -> None:
    """The session re-checks its token on every request: revoked means signed out."""
    token = next(t for t in ctx.store.list_tokens() if t.role == "viewer")
    ctx.store.revoke_token(token.id, T0)
    ctx.tokens.forget(token.id)
    answer = await viewer.get("/")
    assert answer.status_code == 303


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/incidents/INC-1", "/incidents/INC-1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
    ],
)
def test_redirects_stay_on_this_site(given: str, kept: str) -> None:
    """``next`` may only name a path here: no open redirect through sign-in or forms."""
    assert local_path(given) == kept
