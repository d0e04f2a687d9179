"""Dashboard sign-in: an API token becomes an HTTP-only session cookie.

A person pastes an API token once; the server checks it like any API call
(:class:`~stanch.server.auth.TokenChecker`) and answers with a random session id in an
HTTP-only, ``SameSite=Strict`` cookie (``Secure`` over HTTPS). The token stays on the server,
in memory, with the session: it is re-checked on every request, so revoking it signs its
sessions out within the checker's cache time. Sessions end on sign-out, after ``idle_s``
without a request, or ``max_age_s`` after sign-in; they live in this process's memory, so a
restart signs everyone out (several servers behind a load balancer need sticky sessions).

CSRF. Each session has a random token that every form carries in a hidden ``csrf`` field
and every POST must echo (compared in constant time). The sign-in form, which has no session
yet, uses the double-submit pattern: a random value in a short-lived ``SameSite=Strict``
cookie and in the form. POSTs whose ``Origin`` or ``Sec-Fetch-Site`` says they come from
another site are refused before that.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from stanch.server.auth import ROLES, Permission, Principal, Role, TokenChecker

SESSION_COOKIE: Final = "stanch_session"
LOGIN_COOKIE: Final = "stanch_login"
CSRF_FIELD: Final = "csrf"
DASHBOARD_ROLES: Final = ROLES[Permission.READ]


@dataclass(slots=True)
class Session:
    id: str
    raw_token: str = field(repr=False)
    csrf: str = field(repr=False)
    started: float
    seen: float
    flash: str = ""  # a message for the next page (after a form's redirect)


class SessionStore:
    """Live sessions by id; bounded (the oldest is dropped past ``max_sessions``)."""

    def __init__(
        self,
        tokens: TokenChecker,
        *,
        idle_s: float = 8 * 3600.0,
        max_age_s: float = 24 * 3600.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def start(self, raw_token: str) -> tuple[Session, Principal] | None:
        """A new session for a valid token whose role may read; None otherwise."""
        principal = self._principal(raw_token)
        if principal is None:
            return None
        now = self.clock()
        self._sweep(now)
        while len(self._sessions) >= self.max_sessions:
            del self._sessions[next(iter(self._sessions))]
        session = Session(secrets.token_urlsafe(32), raw_token, secrets.token_urlsafe(32), now, now)
        self._sessions[session.id] = session
        return session, principal

    def resume(self, request: Request) -> tuple[Session, Principal] | None:
        """The request's session and who holds it, if both are still good."""
        session_id = request.cookies.get(SESSION_COOKIE, "")
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            return None
        now = self.clock()
        if now - session.seen > self.idle_s or now - session.started > self.max_age_s:
            self._sessions.pop(session.id, None)
            return None
        principal = self._principal(session.raw_token)
        if principal is None:  # revoked meanwhile
            self._sessions.pop(session.id, None)
            return None
        session.seen = now
        return session, principal

    def set_flash(self, session: Session, message: str) -> None:
        session.flash = message

    def take_flash(self, session: Session) -> str:
        message, session.flash = session.flash, ""
        return message

    def end(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _principal(self, raw_token: str) -> Principal | None:
        token = self.tokens.check(raw_token)
        if token is None:
            return None
        try:
            role = Role(token.role)
        except ValueError:
            return None
        if role not in DASHBOARD_ROLES:
            return None
        return Principal(token.name, role, f"dashboard session, token {token.id}")

    def _sweep(self, now: float) -> None:
        stale = [
            sid
            for sid, s in self._sessions.items()
            if now - s.seen > self.idle_s or now - s.started > self.max_age_s
        ]
        for sid in stale:
            del self._sessions[sid]


def may(principal: Principal, permission: Permission) -> bool:
    return principal.role is not None and principal.role in ROLES[permission]


def csrf_ok(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def same_site(request: Request) -> bool:
    """False when the browser says the POST comes from another site (Origin, Sec-Fetch-Site)."""
    fetch_site = request.headers.get("sec-fetch-site", "")
    if fetch_site:  # modern browsers: the most direct answer, and proxy-proof
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin == own


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
