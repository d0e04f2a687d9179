"""ASGI enforcement and recording: the only Stanch code that runs on every request.

``StanchMiddleware`` resolves the request's route *template*, asks the live
:class:`~stanch.core.enforcement.Enforcer` whether to answer for the app (breaker open, route
disabled, client blocked or throttled, load shed), and pushes the outcome onto the
:class:`~stanch.buffer.EventBuffer` for the engine. It is pure ASGI (a ``BaseHTTPMiddleware``
costs ~200 µs a request), awaits nothing of its own, and fails open: an error in Stanch's own
logic is counted in ``internal_errors``, logged once per error type, and the request goes on to
the app as if Stanch were not there.

Use either style::

    app = StanchMiddleware(app, buffer=buffer, policy=holder)
    app.add_middleware(StanchMiddleware, buffer=buffer, policy=holder)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stanch.buffer import EventBuffer, PolicyHolder
from stanch.core.enforcement import Enforcer, Verdict
from stanch.core.series import route_key

_expand_routes: Callable[[list[Any]], Iterable[Any]] | None
try:  # Newer FastAPI keeps an included router as one route; this lists the routes it holds.
    from fastapi.routing import iter_route_contexts as _expand_routes
except ImportError:  # pragma: no cover - older FastAPI flattens include_router itself
    _expand_routes = None

logger = logging.getLogger("stanch.middleware")

UNMATCHED = "__unmatched__"
"""The template of every path no route matches, so a scanner cannot create series."""

DEFAULT_EXCLUDED = frozenset({"/metrics", "/healthz"})
ROUTE_CACHE_SIZE = 10_000
MAX_CLIENT_LEN = 128  # a client id from a header is the client's to choose: bound what we keep
_MAX_LOGGED_KINDS = 64
_MAX_MOUNT_DEPTH = 16


class _Node:
    """One route, flattened: how to match it, its full template, and what it mounts."""

    __slots__ = ("children", "matches", "template")

    def __init__(
        self,
        matches: Callable[[Scope], tuple[Match, Scope]],
        template: str,
        children: list[_Node] | None,
    ) -> None:
        self.matches = matches
        self.template = template
        self.children = children


def _nodes(routes: Iterable[Any], prefix: str, depth: int) -> list[_Node]:
    if _expand_routes is not None:
        routes = _expand_routes(list(routes))
    nodes = []
    for route in routes:
        path = getattr(route, "path", "")  # a Host has no path: it adds nothing to the template
        template = prefix + path if isinstance(path, str) else prefix
        inner = getattr(route, "routes", None)
        children = None
        if inner is not None and depth < _MAX_MOUNT_DEPTH:
            # A mount of an app without routes (static files) is one series under the mount.
            children = _nodes(inner, template, depth + 1) if inner else []
            if not children:
                template += "/{path:path}"
        nodes.append(_Node(route.matches, template, children))
    return nodes


def _walk(nodes: list[_Node], scope: Scope) -> str | None:
    """The template the router would pick: the first FULL match, else the first PARTIAL."""
    partial: tuple[_Node, Scope] | None = None
    for node in nodes:
        match, child = node.matches(scope)
        if match is Match.FULL:
            return _descend(node, scope, child)
        if match is Match.PARTIAL and partial is None:
            partial = (node, child)
    return None if partial is None else _descend(partial[0], scope, partial[1])


def _descend(node: _Node, scope: Scope, child: Scope) -> str | None:
    if not node.children:
        return node.template
    return _walk(node.children, {**scope, **child})  # child sets root_path for the mount


def _find_routes(app: ASGIApp, scope: Scope) -> Any:
    """The app's route list: on the app, on ``scope["app"]``, or down a chain of middleware."""
    routes = getattr(app, "routes", None)
    if routes is None:
        routes = getattr(scope.get("app"), "routes", None)
    inner: Any = app
    for _ in range(_MAX_MOUNT_DEPTH):
        if routes is not None:
            break
        inner = getattr(inner, "app", None)
        routes = getattr(inner, "routes", None)
    return routes


class StanchMiddleware:
    """Enforce the current policy and record every request's outcome.

    ``clock`` is read at the start and end of each request (pass ``SimClock.now`` in a
    simulation). The client is the ``client_header`` value, else the peer address, else ``""``.
    Paths in ``excluded_paths`` and non-HTTP scopes go straight to the app, unrecorded.
    """

    __slots__ = (
        "_buffer",
        "_cache",
        "_clock",
        "_excluded",
        "_header",
        "_logged_kinds",
        "_nodes",
        "_policy",
        "_routes_seen",
        "app",
        "internal_errors",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        buffer: EventBuffer,
        policy: PolicyHolder,
        clock: Callable[[], float] = time.time,
        client_header: str | None = "x-client-id",
        excluded_paths: frozenset[str] = DEFAULT_EXCLUDED,
    ) -> None:
        self.app = app
        self._buffer = buffer
        self._policy = policy
        self._clock = clock
        self._header = client_header.lower().encode("latin-1") if client_header else None
        self._excluded = frozenset(excluded_paths)
        # (method, path) -> (template, route key): built once per path, read on every request.
        self._cache: dict[tuple[str, str], tuple[str, str]] = {}
        self._nodes: list[_Node] | None = None
        self._routes_seen: tuple[int, int] = (0, -1)
        self._logged_kinds: set[type[BaseException]] = set()
        self.internal_errors = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._excluded:
            await self.app(scope, receive, send)
            return
        clock = self._clock
        try:
            method = scope["method"]
            hit = self._cache.get((method, scope["path"]))
            if hit is None:
                hit = self._resolve(scope)
            template, key = hit
            client = ""
            header = self._header
            if header is not None:
                for name, value in scope["headers"]:
                    if name == header:
                        client = value[:MAX_CLIENT_LEN].decode("latin-1")
                        break
            if not client:
                peer = scope.get("client")
                if peer:
                    client = peer[0]
            start = clock()
            enforcer = self._policy.enforcer
            active = enforcer.active
            verdict = enforcer.decide(start, key, client) if active else None
            if verdict is not None:
                headers = verdict.headers()
        except Exception as exc:
            self._internal_error(exc)
            await self.app(scope, receive, send)
            return
        if verdict is not None:
            await self._answer(verdict, headers, send, start, method, template, client)
            return

        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            # A crash counts as a 500 even after the response started: the client got a broken
            # answer. Anything else (a cancellation) is recorded too, so a half-open breaker
            # gets its probe slot back; 499 is "client closed request".
            failed = 500 if isinstance(exc, Exception) else status or 499
            self._finish(enforcer, active, start, method, template, key, failed, client)
            raise
        end = start
        try:
            end = clock()
            self._buffer.push((start, method, template, status or 500, end - start, client, ""))
        except Exception as exc:
            self._internal_error(exc)
        if active:
            try:
                enforcer.record(end, key, status or 500)
            except Exception as exc:
                self._internal_error(exc)

    async def _answer(
        self,
        verdict: Verdict,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        start: float,
        method: str,
        template: str,
        client: str,
    ) -> None:
        """Answer for the app. No breaker record: the app was not asked."""
        try:
            await send(
                {"type": "http.response.start", "status": verdict.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": verdict.body})
        finally:
            try:
                latency = self._clock() - start
                event = (start, method, template, verdict.status, latency, client, verdict.reason)
                self._buffer.push(event)
            except Exception as exc:
                self._internal_error(exc)

    def _finish(
        self,
        enforcer: Enforcer,
        active: bool,
        start: float,
        method: str,
        template: str,
        key: str,
        status: int,
        client: str,
    ) -> None:
        """Record a request the app did not complete; never raises."""
        end = start
        try:
            end = self._clock()
            self._buffer.push((start, method, template, status, end - start, client, ""))
        except Exception as exc:
            self._internal_error(exc)
        if active:
            try:
                enforcer.record(end, key, status)
            except Exception as exc:
                self._internal_error(exc)

    def _resolve(self, scope: Scope) -> tuple[str, str]:
        """Template and route key of a (method, path) not in the cache yet; caches them."""
        routes = _find_routes(self.app, scope)
        # Rebuilt when the route list changes (routes added after the first request).
        seen = (id(routes), len(routes) if routes is not None else -1)
        if self._nodes is None or seen != self._routes_seen:
            if routes is None:
                logger.warning("Stanch found no routes on the app: every path is %s", UNMATCHED)
            self._nodes = _nodes(routes or [], "", 0)
            self._routes_seen = seen
            self._cache.clear()
        method, path = scope["method"], scope["path"]
        # Routes may write to the scope while matching (FastAPI does): give them a copy.
        template = _walk(self._nodes, dict(scope)) or UNMATCHED
        hit = (template, route_key(method, template))
        cache = self._cache
        if len(cache) >= ROUTE_CACHE_SIZE:
            cache.clear()  # bounded: a scan of distinct paths costs a re-resolve, not memory
        cache[method, path] = hit
        return hit

    def _internal_error(self, exc: Exception) -> None:
        self.internal_errors += 1
        kind = type(exc)
        if kind not in self._logged_kinds and len(self._logged_kinds) < _MAX_LOGGED_KINDS:
            self._logged_kinds.add(kind)
            logger.error(
                "Stanch internal error (%s); the request went on to the app without Stanch",
                kind.__name__,
                exc_info=exc,
            )
