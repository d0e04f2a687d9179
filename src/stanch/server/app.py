"""``create_app``: the FastAPI application of ``stanch serve``, versioned under ``/api/v1``.

It runs the same :class:`~stanch.engine.Engine` as embedded mode, held by a
:class:`~stanch.server.context.ServerContext`. Later additions plug in two ways: pass more
routers (``create_app(ctx, routers=[...])``; each route must declare a permission, see
below), or reach ``app.state.stanch`` (the context: engine, store, settings, queue, audit,
``extensions``) from their own code.

Every route must depend on :func:`~stanch.server.auth.require` or
:func:`~stanch.server.auth.require_webhook`: ``create_app`` refuses to build an app with an
unguarded route, and writes each route's roles into its OpenAPI operation
(``x-stanch-permission``, ``x-stanch-roles``).

Errors are JSON ``{"detail": ...}`` 4xx answers: 400 for refused input (Stanch's own
``ValidationError``), 404 for unknown ids, 409 for a state that does not allow the request,
413/415 from the body guard, 422 for request validation (FastAPI's list of problems), and on
the PagerDuty endpoints PagerDuty's own ``400 invalid event``. Anything unexpected is a 500
with an error id that is also logged with the traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from stanch import __version__
from stanch.core.errors import IllegalTransition, NotFound, StanchError, ValidationError
from stanch.metrics import metrics_app
from stanch.server.api import ROUTERS
from stanch.server.api.schemas import HealthOut
from stanch.server.api.webhooks import PAGERDUTY_PREFIX
from stanch.server.auth import PERMISSION_ATTR, ROLES, Permission, require
from stanch.server.context import ServerContext
from stanch.server.dashboard import mount_dashboard
from stanch.server.limits import BodyGuard
from stanch.sources.pagerduty import MAX_BODY_BYTES as PAGERDUTY_MAX_BODY

API_PREFIX = "/api/v1"
log = logging.getLogger("stanch.server")

health_router = APIRouter(tags=["health"])


@health_router.get("/health", response_model=HealthOut, summary="Liveness (no token needed)")
async def health(_: Any = Depends(require(Permission.PUBLIC))) -> HealthOut:
    return HealthOut(status="ok", version=__version__)


def create_app(
    ctx: ServerContext,
    *,
    routers: Iterable[APIRouter] = (),
    close_on_shutdown: bool = False,
    dashboard: bool = True,
) -> FastAPI:
    """The application around ``ctx``. With ``ctx.settings.run_loop`` the lifespan runs the
    step loop; ``close_on_shutdown`` closes the context's store when the server stops;
    ``dashboard`` serves the browser dashboard on every path outside the API and /metrics."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(ctx.run()) if ctx.settings.run_loop else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if close_on_shutdown:
                ctx.close()

    app = FastAPI(
        title="Stanch control plane",
        version=__version__,
        summary="Detect, isolate and mitigate incidents in HTTP APIs",
        description=__doc__ or "",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.stanch = ctx
    for router in (health_router, *ROUTERS, *routers):
        _check_guards(router)
        app.include_router(router, prefix=API_PREFIX)
    _install_error_handlers(app)
    settings = ctx.settings
    app.add_middleware(
        BodyGuard,
        max_body_bytes=settings.max_body_bytes,
        max_decoded_bytes=settings.max_decoded_bytes,
        max_depth=settings.max_json_depth,
        limits=[(PAGERDUTY_PREFIX, PAGERDUTY_MAX_BODY)],
        render=render_error,
    )
    app.router.routes.append(
        Route("/metrics", _authenticated(ctx, metrics_app(ctx.metrics)), include_in_schema=False)
    )
    if dashboard:
        mount_dashboard(app, ctx, excluded=(API_PREFIX, "/metrics"))
    return app


def _authenticated(ctx: ServerContext, inner: ASGIApp) -> ASGIApp:
    """``/metrics`` is read with any valid token (Prometheus: ``authorization`` in the scrape
    config): Stanch's own health and per-route traffic are not for anonymous eyes."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        header = dict(scope.get("headers", ())).get(b"authorization", b"").decode("latin-1")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or ctx.tokens.check(raw.strip()) is None:
            body = b'{"detail":"a valid bearer token is required for /metrics"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b"Bearer"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return _AsgiEndpoint(guarded)


class _AsgiEndpoint:
    """An ASGI function as an object. Starlette's ``Route`` calls a plain *function* as a
    request -> response endpoint (``f(request)``), so a bare ASGI function behind ``Route``
    fails on every request; an instance is served as the ASGI app it is."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def permission_of(route: APIRoute) -> Permission | None:
    """The permission a route's dependencies demand (None: unguarded)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        found = getattr(dependant.call, PERMISSION_ATTR, None)
        if isinstance(found, Permission):
            return found
        pending.extend(dependant.dependencies)
    return None


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every API route of ``app``.

    FastAPI from 0.16x keeps included routers as lazy wrappers in ``app.routes``; its
    ``iter_route_contexts`` resolves them. Older versions copied the routes in.
    """
    resolve = getattr(fastapi_routing, "iter_route_contexts", None)
    if resolve is None:
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, route
        return
    for context in resolve(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute):
            yield str(context.path), original


def _check_guards(router: APIRouter) -> None:
    """Refuse an unguarded route; write each route's roles into its OpenAPI operation (before
    the router is included: included routes are copies)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        permission = permission_of(route)
        if permission is None:
            raise RuntimeError(
                f"route {route.methods} {API_PREFIX}{route.path} declares no permission"
            )
        route.openapi_extra = {
            **(route.openapi_extra or {}),
            "x-stanch-permission": permission.value,
            "x-stanch-roles": sorted(r.value for r in ROLES[permission]),
        }


def render_error(path: str, status: int, detail: str) -> dict[str, Any]:
    """The error body for ``path``: PagerDuty's shape on its endpoints, else ``{"detail"}``."""
    if path.startswith(PAGERDUTY_PREFIX) and status == 400:
        return {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": [detail],
            "detail": detail,
        }
    return {"detail": detail}


def _install_error_handlers(app: FastAPI) -> None:
    def answer(request: Request, status: int, detail: str) -> JSONResponse:
        return JSONResponse(render_error(request.url.path, status, detail), status_code=status)

    async def on_not_found(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 404, str(exc))

    async def on_conflict(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 409, str(exc))

    async def on_refused(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 400, str(exc))

    async def on_request_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = exc.errors()
        if request.url.path.startswith(PAGERDUTY_PREFIX):
            lines = [
                ".".join(str(p) for p in err.get("loc", ()) if p != "body") + f": {err['msg']}"
                for err in problems
            ]
            body = render_error(request.url.path, 400, "; ".join(lines))
            body["errors"] = lines
            return JSONResponse(body, status_code=400)
        return JSONResponse(
            {"detail": jsonable_encoder(_without_inputs(problems))}, status_code=422
        )

    allowed: list[tuple[re.Pattern[str], set[str]]] = []

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route matching the path; list all of them.
            if not allowed:
                allowed.extend((compile_path(p)[0], r.methods or set()) for p, r in api_routes(app))
            path = request.url.path
            methods = {m for regex, ms in allowed if regex.match(path) for m in ms}
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error {error_id}"}, status_code=500)

    app.add_exception_handler(NotFound, on_not_found)
    app.add_exception_handler(IllegalTransition, on_conflict)
    app.add_exception_handler(ValidationError, on_refused)
    app.add_exception_handler(StanchError, on_refused)
    app.add_exception_handler(RequestValidationError, on_request_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _without_inputs(problems: Any) -> list[dict[str, Any]]:
    """Validation problems without the offending input echoed back (it may be huge, or
    not JSON-serializable), keeping type, loc and msg."""
    return [{k: v for k, v in dict(p).items() if k in ("type", "loc", "msg")} for p in problems]
