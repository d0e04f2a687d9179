"""The dashboard as one ASGI application: sign-in, pages, forms, live updates, static files.

:func:`mount_dashboard` hangs it under the control plane's app for every path except the ones
it is told to leave alone (the API and ``/metrics``), so the API keeps its own JSON errors,
404s and 405s. Every answer carries a strict Content-Security-Policy (scripts and styles only
from this server, no inline code), ``nosniff``, no framing, and ``no-store`` for anything that
is not a static file.

Live updates: each page polls ``GET /live`` every 0.8 s; the answer is a version string
that changes whenever the engine emits an event, a step records new points, a form here
changes something, or the runbook is replaced. On a change the page fetches itself again and
swaps the regions marked ``data-live`` (keeping focus, typed text and charts), then refreshes
its charts' data: a change is on screen within about a second, without a reload.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stanch.core.series import SeriesKey
from stanch.core.windows import Point
from stanch.server.context import ServerContext
from stanch.server.dashboard import admin, forms, pages, silences
from stanch.server.dashboard.history import SignalHistory
from stanch.server.dashboard.render import STATIC, environment, render
from stanch.server.dashboard.sessions import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SessionStore,
    clear_cookie,
    csrf_ok,
    same_site,
    set_cookie,
)
from stanch.server.dashboard.web import (
    Dashboard,
    FormError,
    LiveFeed,
    dashboard_of,
    field,
    local_path,
    read_form,
    refuse,
    wants_json,
)

EXTENSION: Final = "dashboard"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_HEADERS: Final = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Pure ASGI: the headers above on every answer; ``no-store`` on all but static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        cache = b"public, max-age=3600" if static else b"no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                message = {**message, "headers": [*headers, *_HEADERS, (b"cache-control", cache)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- sign-in ----------------------------------------------------------------------------------


def _login_page(request: Request, *, message: str = "", status: int = 200) -> Response:
    dash = dashboard_of(request)
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    html = render(
        dash.env,
        "login.html",
        title="Sign in",
        nonce=nonce,
        next=local_path(request.query_params.get("next", "/")),
        message=message,
    )
    response = HTMLResponse(html, status_code=status)
    set_cookie(response, request, LOGIN_COOKIE, nonce, max_age=3600)
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    dash = dashboard_of(request)
    if not same_site(request):
        return refuse(request, 403, "cross-site sign-in is refused")
    try:
        fields = await read_form(request)
        token = field(fields, "token", limit=300).strip()
    except FormError as exc:
        return refuse(request, exc.status, exc.message)
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), fields.get(CSRF_FIELD, "")):
        return _login_page(request, message="The sign-in form expired: try again.", status=403)
    started = dash.sessions.start(token)
    if started is None:
        return _login_page(
            request,
            message="That token is not valid, is revoked, or its role cannot use the dashboard.",
            status=401,
        )
    session, principal = started
    dash.ctx.audit.record(principal.actor, "dashboard.sign_in", principal.via.rsplit(" ", 1)[-1])
    response = RedirectResponse(local_path(fields.get("next", "/")), status_code=303)
    set_cookie(response, request, SESSION_COOKIE, session.id, max_age=None)
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


async def logout(request: Request) -> Response:
    dash = dashboard_of(request)
    resumed = dash.sessions.resume(request)
    if resumed is not None and same_site(request):
        session, _ = resumed
        try:
            fields = await read_form(request)
        except FormError as exc:
            return refuse(request, exc.status, exc.message)
        if not csrf_ok(session.csrf, fields.get(CSRF_FIELD, "")):
            return refuse(request, 403, "the form's CSRF token is missing or stale: reload")
        dash.sessions.end(session)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


async def live(request: Request) -> Response:
    dash = dashboard_of(request)
    if dash.sessions.resume(request) is None:
        return JSONResponse({"ok": False, "message": "sign in again"}, status_code=401)
    return JSONResponse({"version": dash.version()})


async def not_found(request: Request, exc: Exception) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": False, "message": "not found"}, status_code=404)
    return refuse(request, 404, "There is no such page.")


async def not_allowed(request: Request, exc: Exception) -> Response:
    return refuse(request, 405, "That method is not allowed here.")


# -- wiring -----------------------------------------------------------------------------------


def build(dash: Dashboard) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/live", live, methods=["GET"]),
        *pages.ROUTES,
        *forms.ROUTES,
        *admin.ROUTES,
        *silences.ROUTES,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: not_found, 405: not_allowed},
    )
    app.state.dashboard = dash
    return app


class _Except(Mount):
    """A mount at the root that declines the paths other parts of the server own."""

    def __init__(self, app: ASGIApp, excluded: Sequence[str]) -> None:
        super().__init__("", app=app)
        self.excluded = tuple(excluded)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = str(scope.get("path", ""))
        for prefix in self.excluded:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return Match.NONE, {}
        return super().matches(scope)


def dashboard_for(ctx: ServerContext) -> Dashboard:
    """The context's dashboard, created (and subscribed to the engine) on first use."""
    existing = ctx.extensions.get(EXTENSION)
    if isinstance(existing, Dashboard):
        return existing
    engine = ctx.engine
    history = SignalHistory(interval_s=engine.config.interval_s)
    feed = LiveFeed()
    dash = Dashboard(ctx, history, SessionStore(ctx.tokens), feed, environment())

    def on_points(now: float, points: list[Point]) -> None:
        monitors: dict[SeriesKey, Any] = engine.monitors
        history.record(points, monitors)

    engine.on_points.append(on_points)
    engine.listeners.append(feed.on_engine_event)
    ctx.extensions[EXTENSION] = dash
    return dash


def mount_dashboard(app: Any, ctx: ServerContext, *, excluded: Sequence[str] = ()) -> Dashboard:
    """Serve the dashboard from ``app`` (a Starlette/FastAPI app) for every path not under
    ``excluded``; returns the context's :class:`Dashboard`."""
    dash = dashboard_for(ctx)
    app.router.routes.append(_Except(build(dash), excluded))
    return dash
