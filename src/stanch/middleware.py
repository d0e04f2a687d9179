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
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette._utils import get_route_path  # what Starlette's own routes match against
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
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_MAX_MOUNT_DEPTH = 16


class _Node:
    """One route, flattened: how to match it, its full template, and what it mounts.

    ``regex`` is the route's own ``path_regex`` when it has one: Starlette's routes match only
    if it matches the route path, so testing it first skips the costlier ``matches()`` (which
    builds a child scope) for every route that cannot match. It is what keeps a cache miss
    (every new id on a path-parameter route) cheap.
    """

    __slots__ = ("children", "matches", "regex", "template")

    def __init__(
        self,
        matches: Callable[[Scope], tuple[Match, Scope]],
        regex: re.Pattern[str] | None,
        template: str,
        children: list[_Node] | None,
    ) -> None:
        self.matches = matches
        self.regex = regex
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
        regex = getattr(route, "path_regex", None)
        regex = regex if isinstance(regex, re.Pattern) else None
        nodes.append(_Node(route.matches, regex, template, children))
    return nodes


def _walk(nodes: list[_Node], scope: Scope) -> str | None:
    """The template the router would pick: the first FULL match, else the first PARTIAL."""
    partial: tuple[_Node, Scope] | None = None
    route_path = get_route_path(scope)
    for node in nodes:
        regex = node.regex
        if regex is not None and regex.match(route_path) is None:
            continue
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
    simulation). The client is the ``client_header`` value (cut to ``MAX_CLIENT_LEN``), else the
    peer address, else ``""``. Paths in ``excluded_paths`` and non-HTTP scopes go straight to
    the app, unrecorded and unenforced.

    Route templates come from the app's own routes (``route.matches``, as the router picks:
    first FULL, else first PARTIAL) and are cached per (method, path), up to
    ``ROUTE_CACHE_SIZE`` entries. A method outside the standard nine is recorded as ``OTHER``.
    ``internal_errors`` counts Stanch's own failures; each one left its request untouched.
    """

    __slots__ = (
        "_buffer",
        "_cache",
        "_clock",
        "_excluded",
        "_header",
        "_keys",
        "_logged_kinds",
        "_nodes",
        "_policy",
        "_push",
        "_route_count",
        "_routes",
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
        self._push = buffer.push  # bound once: it runs on every request
        self._policy = policy
        self._clock = clock
        self._header = client_header.lower().encode("latin-1") if client_header else None
        self._excluded = frozenset(excluded_paths)
        # (method, path) -> (method, template, route key): built once per path, read on every
        # request. The tuples are shared per (method, template) through ``_keys``.
        self._cache: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._keys: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._routes: Any = None
        self._route_count = -1
        self._nodes: list[_Node] | None = None
        self._logged_kinds: set[type[BaseException]] = set()
        self.internal_errors = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._excluded:
            await self.app(scope, receive, send)
            return
        clock = self._clock
        try:
            hit = self._cache.get((scope["method"], scope["path"]))
            if hit is None:
                hit = self._resolve(scope)
            method, template, key = hit
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
            latency = end - start
            if latency < 0.0:
                latency = 0.0  # a wall clock stepped back mid-request (NTP): not a latency
            self._push((start, method, template, status or 500, latency, client, ""))
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
                latency = max(0.0, self._clock() - start)
                event = (start, method, template, verdict.status, latency, client, verdict.reason)
                self._push(event)
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
            self._push((start, method, template, status, max(0.0, end - start), client, ""))
        except Exception as exc:
            self._internal_error(exc)
        if active:
            try:
                enforcer.record(end, key, status)
            except Exception as exc:
                self._internal_error(exc)

    def _resolve(self, scope: Scope) -> tuple[str, str, str]:
        """Method, template and route key of a (method, path) not cached yet; caches them."""
        routes = self._routes
        if routes is None:
            routes = self._routes = _find_routes(self.app, scope)
            if routes is None:
                routes = self._routes = []
                logger.warning("Stanch found no routes on the app: every path is %s", UNMATCHED)
        if self._nodes is None or len(routes) != self._route_count:
            # (Re)built when the app's route list grows (routes added after the first request).
            self._nodes = _nodes(routes, "", 0)
            self._route_count = len(routes)
            self._cache.clear()
            self._keys.clear()
        method, path = scope["method"], scope["path"]
        # Routes may write to the scope while matching (FastAPI does): give them a copy.
        template = _walk(self._nodes, dict(scope)) or UNMATCHED
        keys = self._keys
        hit = keys.get((method, template))
        if hit is None:
            # Any token is a valid method: exotic ones share one name, so they cannot make series.
            name = method if method in _METHODS else "OTHER"
            hit = (name, template, route_key(name, template))
            if len(keys) >= ROUTE_CACHE_SIZE:
                keys.clear()
            keys[method, template] = hit
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
