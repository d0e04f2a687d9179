"""What every dashboard handler shares: the dashboard's state, the signed-in view of a request,
and the two decorators that guard pages (GET) and forms (POST).

A page handler receives a :class:`View` (who is asking, what they may do, how to render);
a form handler also receives the parsed form, after the same-site check, the session's CSRF
token and the role have been verified, in that order. A form answers ``303`` back to the page
for a plain submit, or JSON ``{"ok", "message"}`` for the page's script (``Accept:
application/json``), which then refreshes the page's live regions without a reload.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, quote

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from stanch.core.errors import IllegalTransition, NotFound, StanchError
from stanch.server.auth import Permission, Principal
from stanch.server.context import ServerContext
from stanch.server.dashboard.history import SignalHistory
from stanch.server.dashboard.render import render
from stanch.server.dashboard.sessions import (
    CSRF_FIELD,
    Session,
    SessionStore,
    csrf_ok,
    may,
    same_site,
)

log = logging.getLogger("stanch.dashboard")

MAX_FORM_FIELDS: Final = 50


class LiveFeed:
    """A counter of changes worth redrawing for: engine events and the dashboard's own forms."""

    def __init__(self) -> None:
        self.state = 0

    def on_engine_event(self, name: str, details: dict[str, Any]) -> None:
        self.state += 1

    def bump(self) -> None:
        self.state += 1


@dataclass(slots=True)
class Dashboard:
    ctx: ServerContext
    history: SignalHistory
    sessions: SessionStore
    feed: LiveFeed
    env: Environment
    cache: dict[str, tuple[int, bytes]] = dataclasses.field(default_factory=dict)  # built once

    def version(self) -> str:
        """Changes when anything a page shows may have changed (polled by open pages).

        The runbook's identity is part of it: replacing the runbook through the API emits no
        engine event."""
        return f"{self.feed.state}.{self.history.updates}.{id(self.ctx.engine.runbook):x}"


class FormError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class View:
    """One signed-in request."""

    dash: Dashboard
    request: Request
    session: Session
    who: Principal

    @property
    def ctx(self) -> ServerContext:
        return self.dash.ctx

    def can(self, permission: Permission) -> bool:
        return may(self.who, permission)

    def flash(self, message: str) -> None:
        """A message for the next page this session sees (after a plain form's redirect)."""
        self.dash.sessions.set_flash(self.session, message)

    def page(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        html = render(
            self.dash.env,
            template,
            who=self.who,
            csrf=self.session.csrf,
            can_respond=self.can(Permission.RESPOND),
            can_admin=self.can(Permission.ADMIN),
            now=self.ctx.now(),
            path=self.request.url.path,
            here=_here(self.request),
            version=self.dash.version(),
            flash=self.dash.sessions.take_flash(self.session),
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def error(self, status: int, message: str) -> HTMLResponse:
        return self.page(
            "error.html",
            status=status,
            title=f"Error {status}",
            status_code=status,
            message=message,
        )


@dataclass(frozen=True, slots=True)
class Done:
    """A form's outcome: what to tell the person, and where a plain submit goes next."""

    message: str
    to: str


PageHandler = Callable[[View], Awaitable[Response]]
FormHandler = Callable[[View, dict[str, str]], Awaitable[Response | Done]]
Endpoint = Callable[[Request], Awaitable[Response]]


def dashboard_of(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dashboard
    return dash


def page(permission: Permission = Permission.READ) -> Callable[[PageHandler], Endpoint]:
    """A GET page for signed-in people whose role has ``permission``."""

    def wrap(handler: PageHandler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            dash = dashboard_of(request)
            resumed = dash.sessions.resume(request)
            if resumed is None:
                return to_login(request)
            view = View(dash, request, *resumed)
            if not view.can(permission):
                return view.error(403, f"Your role ({view.who.role}) may not see this page.")
            try:
                return await handler(view)
            except NotFound as exc:
                return view.error(404, str(exc))

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


def form(permission: Permission) -> Callable[[FormHandler], Endpoint]:
    """A POST for signed-in people whose role has ``permission``; CSRF-checked."""

    def wrap(handler: FormHandler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            dash = dashboard_of(request)
            if not same_site(request):
                return refuse(request, 403, "cross-site form submissions are refused")
            resumed = dash.sessions.resume(request)
            if resumed is None:
                return refuse(request, 401, "your session has ended: sign in again")
            view = View(dash, request, *resumed)
            try:
                fields = await read_form(request)
            except FormError as exc:
                return refuse(request, exc.status, exc.message)
            if not csrf_ok(view.session.csrf, fields.get(CSRF_FIELD, "")):
                return refuse(request, 403, "the form's CSRF token is missing or stale: reload")
            if not view.can(permission):
                return refuse(request, 403, f"your role ({view.who.role}) may not do this")
            try:
                outcome = await handler(view, fields)
            except FormError as exc:
                return refuse(request, exc.status, exc.message, view)
            except NotFound as exc:
                return refuse(request, 404, str(exc), view)
            except IllegalTransition as exc:
                return refuse(request, 409, str(exc), view)
            except StanchError as exc:
                return refuse(request, 400, str(exc), view)
            dash.feed.bump()
            if isinstance(outcome, Response):
                return outcome
            if wants_json(request):
                return JSONResponse({"ok": True, "message": outcome.message})
            view.flash(outcome.message)
            return RedirectResponse(outcome.to, status_code=303)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (first value of each name)."""
    body = await request.body()
    if not body:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError(415, "forms must be sent as application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormError(400, "the form is not valid UTF-8 or has too many fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in value:
            raise FormError(400, f"field {name!r} contains a NUL character")
        fields.setdefault(name, value)
    return fields


def field(fields: dict[str, str], name: str, *, limit: int, required: bool = False) -> str:
    value = fields.get(name, "").replace("\r\n", "\n")
    if len(value) > limit:
        raise FormError(400, f"{name} is longer than {limit} characters")
    if required and not value.strip():
        raise FormError(400, f"{name} must not be empty")
    return value


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def refuse(request: Request, status: int, message: str, view: View | None = None) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": False, "message": message}, status_code=status)
    if view is not None:
        return view.error(status, message)
    return HTMLResponse(
        f"<!doctype html><title>{status}</title><p>{_escape(message)}</p>"
        '<p><a href="/">Back to the dashboard</a></p>',
        status_code=status,
    )


def to_login(request: Request) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": False, "message": "sign in again"}, status_code=401)
    return RedirectResponse(f"/login?next={quote(_here(request), safe='/')}", status_code=303)


def local_path(value: str, default: str = "/") -> str:
    """``value`` if it is a path on this site (never another host), else ``default``."""
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 for c in value)
    ):
        return default
    return value


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
