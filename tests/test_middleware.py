"""StanchMiddleware through real ASGI calls: templates, recording, enforcement and failing open."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from stanch import middleware as middleware_module
from stanch.buffer import EventBuffer, PolicyHolder, RawEvent
from stanch.clock import SimClock
from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.breaker import BreakerState
from stanch.core.enforcement import Enforcer, Verdict
from stanch.core.policy import BreakerRule, Policy, RouteRule
from stanch.middleware import UNMATCHED, StanchMiddleware

pytestmark = pytest.mark.asyncio

SERVICE = "svc"
T0 = 1_764_000_000.0
ITEM = "GET /items/{item_id}"


# -- the app under test and its harness ------------------------------------------------------


def make_app(clock: SimClock, calls: list[str]) -> FastAPI:
    """A small API that logs each call it answers and spends simulated latency on ``/slow``."""
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        calls.append(f"item {item_id}")
        return {"id": item_id}

    @app.post("/items", status_code=201)
    async def create_item() -> dict[str, str]:
        calls.append("create")
        return {"created": "yes"}

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        calls.append("slow")
        clock.advance(0.25)
        return {"slow": "yes"}

    @app.get("/fail")
    async def fail() -> JSONResponse:
        calls.append("fail")
        return JSONResponse({"error": "upstream"}, status_code=500)

    @app.get("/boom")
    async def boom() -> None:
        calls.append("boom")
        raise RuntimeError("boom")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        calls.append("healthz")
        return {"ok": "yes"}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        calls.append("metrics")
        return PlainTextResponse("up 1\n")

    users = APIRouter()

    @users.get("/users/{user_id}")
    async def get_user(user_id: str) -> dict[str, str]:
        calls.append(f"user {user_id}")
        return {"user": user_id}

    app.include_router(users, prefix="/api")

    async def hello(request: Request) -> PlainTextResponse:
        calls.append("hello")
        return PlainTextResponse("hello")

    app.mount("/sub", Starlette(routes=[Route("/hello/{name}", hello)]))
    return app


@dataclass
class Stack:
    clock: SimClock
    buffer: EventBuffer
    holder: PolicyHolder
    calls: list[str]
    app: Any  # what the client talks to
    mw: StanchMiddleware | None  # None when Starlette built it (add_middleware)

    def client(self, client_id: str | None = None) -> httpx.AsyncClient:
        headers = {"x-client-id": client_id} if client_id else {}
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)

    def events(self) -> list[RawEvent]:
        return raw(self.buffer)

    def publish(self, *actions: Action) -> None:
        self.holder.publish(Policy.from_actions(SERVICE, 1, actions), self.clock.now())


def build(style: str = "wrap", buffer: EventBuffer | None = None, **kwargs: Any) -> Stack:
    clock = SimClock(T0)
    calls: list[str] = []
    buffer = buffer if buffer is not None else EventBuffer(SERVICE)
    holder = PolicyHolder(SERVICE, now=T0)
    app = make_app(clock, calls)
    opts = {"buffer": buffer, "policy": holder, "clock": clock.now, **kwargs}
    if style == "wrap":
        mw = StanchMiddleware(app, **opts)
        return Stack(clock, buffer, holder, calls, mw, mw)
    app.add_middleware(StanchMiddleware, **opts)
    return Stack(clock, buffer, holder, calls, app, None)


def raw(buffer: EventBuffer) -> list[RawEvent]:
    """Drain ``buffer`` back into the tuples the middleware pushed."""
    return [
        (e.ts, e.method, e.route, e.status, e.latency_s, e.client, e.enforced)
        for e in buffer.drain()
    ]


_ids = iter(range(1, 10**6))


def action(kind: ActionKind, target: str, stage: int = 0, **params: Any) -> Action:
    """An APPLIED action of incident ``inc-7``, the way the engine would hand it over."""
    return Action(
        id=f"act-{next(_ids)}",
        incident_id="inc-7",
        kind=kind,
        mode=ActionMode.AUTO,
        state=ActionState.APPLIED,
        service=SERVICE,
        target=target,
        rule="test-rule",
        created_at=T0,
        ttl_s=600.0,
        verify_within_s=60.0,
        params=params,
        stage=stage,
        applied_at=T0,
    )


async def call_raw(app: Any, scope: Scope, body: bytes = b"") -> list[Message]:
    """One raw ASGI call; returns what the app sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str, **extra: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "server": ("test", 80),
    }
    scope.update(extra)
    return scope


# -- route templates ---------------------------------------------------------------------------


@pytest.fixture(params=["wrap", "add_middleware"])
def style(request: pytest.FixtureRequest) -> str:
    """Both ways of installing the middleware."""
    return str(request.param)


async def test_path_parameters_share_one_template(style: str) -> None:
    """``/items/42`` and ``/items/43`` are recorded under the one template ``/items/{item_id}``."""
    stack = build(style)
    async with stack.client() as c:
        assert (await c.get("/items/42")).json() == {"id": 42}
        assert (await c.get("/items/43")).json() == {"id": 43}
    assert {(e[1], e[2]) for e in stack.events()} == {("GET", "/items/{item_id}")}


async def test_unknown_path_is_unmatched(style: str) -> None:
    """A path no route matches is recorded as ``__unmatched__``, so scans make no new series."""
    stack = build(style)
    async with stack.client() as c:
        for path in ("/wp-admin", "/.env", "/items/42/extra"):
            assert (await c.get(path)).status_code == 404
    assert {e[2] for e in stack.events()} == {UNMATCHED}


async def test_method_mismatch_keeps_the_template(style: str) -> None:
    """A wrong method (a PARTIAL match) is recorded under the route's template with its 405."""
    stack = build(style)
    async with stack.client() as c:
        assert (await c.delete("/items/42")).status_code == 405
    [event] = stack.events()
    assert event[1:4] == ("DELETE", "/items/{item_id}", 405)


async def test_included_routers_and_mounts_join_their_prefixes(style: str) -> None:
    """Routes under ``include_router(prefix=)`` and ``mount()`` get their full template."""
    stack = build(style)
    async with stack.client() as c:
        assert (await c.get("/api/users/ann")).status_code == 200
        assert (await c.get("/sub/hello/bob")).text == "hello"
        assert (await c.get("/sub/nowhere")).status_code == 404
    templates = [e[2] for e in stack.events()]
    assert templates == ["/api/users/{user_id}", "/sub/hello/{name}", UNMATCHED]


async def test_routes_are_found_through_other_middleware() -> None:
    """Wrapped around another middleware, Stanch still finds the app's routes down the chain."""
    clock, buffer = SimClock(T0), EventBuffer(SERVICE)
    app = make_app(clock, [])
    mw = StanchMiddleware(
        GZipMiddleware(app), buffer=buffer, policy=PolicyHolder(SERVICE), clock=clock.now
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as c:
        assert (await c.get("/items/7")).status_code == 200
    assert raw(buffer)[0][2] == "/items/{item_id}"


async def test_routes_added_after_the_first_request_are_resolved() -> None:
    """A route added after traffic started is matched on its first request."""
    stack = build()
    app: FastAPI = stack.app.app
    async with stack.client() as c:
        assert (await c.get("/items/1")).status_code == 200

        @app.get("/late")
        async def late() -> dict[str, str]:
            return {"late": "yes"}

        assert (await c.get("/late")).status_code == 200
    assert [e[2] for e in stack.events()] == ["/items/{item_id}", "/late"]


async def test_route_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The (method, path) cache is cleared when full, so distinct paths cannot grow it."""
    monkeypatch.setattr(middleware_module, "ROUTE_CACHE_SIZE", 3)
    stack = build()
    assert stack.mw is not None
    async with stack.client() as c:
        for i in range(10):
            await c.get(f"/items/{i}")
    assert len(stack.mw._cache) <= 3
    assert {e[2] for e in stack.events()} == {"/items/{item_id}"}


# -- what is recorded --------------------------------------------------------------------------


async def test_event_has_start_time_status_latency_and_client() -> None:
    """Each request pushes (start, method, template, status, latency, client, "")."""
    stack = build()
    async with stack.client("acme") as c:
        assert (await c.get("/slow")).status_code == 200
        assert (await c.post("/items")).status_code == 201
    assert stack.events() == [
        (T0, "GET", "/slow", 200, 0.25, "acme", ""),
        (T0 + 0.25, "POST", "/items", 201, 0.0, "acme", ""),
    ]


async def test_client_falls_back_to_peer_address_then_empty() -> None:
    """Without the client header the peer IP is the client; with neither it is ``""``."""
    stack = build()
    assert stack.mw is not None
    async with stack.client() as c:
        await c.get("/items/1")
    await call_raw(stack.mw, http_scope("/items/2"))
    assert [e[5] for e in stack.events()] == ["127.0.0.1", ""]


async def test_client_header_can_be_turned_off_and_is_bounded() -> None:
    """``client_header=None`` ignores the header; a header value is cut to MAX_CLIENT_LEN."""
    off = build(client_header=None)
    async with off.client("acme") as c:
        await c.get("/items/1")
    assert off.events()[0][5] == "127.0.0.1"
    on = build(client_header="X-Tenant")
    async with on.client() as c:
        await c.get("/items/1", headers={"x-tenant": "t" * 1000})
    assert on.events()[0][5] == "t" * middleware_module.MAX_CLIENT_LEN


async def test_full_buffer_drops_and_counts_without_touching_requests() -> None:
    """A full buffer drops events and counts them; every request is still answered by the app."""
    stack = build(buffer=EventBuffer(SERVICE, capacity=2))
    assert stack.mw is not None
    async with stack.client() as c:
        statuses = [(await c.get(f"/items/{i}")).status_code for i in range(5)]
    assert statuses == [200] * 5
    assert len(stack.buffer) == 2
    assert stack.buffer.dropped == 3
    assert stack.mw.internal_errors == 0


async def test_excluded_paths_pass_through_unrecorded_and_unenforced() -> None:
    """``/healthz`` and ``/metrics`` reach the app even for a blocked client, unrecorded."""
    stack = build()
    stack.publish(action(ActionKind.BLOCK_CLIENT, "bot"))
    async with stack.client("bot") as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/metrics")).text == "up 1\n"
        assert (await c.get("/items/1")).status_code == 403
    assert stack.calls == ["healthz", "metrics"]
    assert [e[6] for e in stack.events()] == ["block"]


async def test_lifespan_passes_through() -> None:
    """Lifespan startup and shutdown reach the app's lifespan unchanged."""
    seen: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        seen.append("startup")
        yield
        seen.append("shutdown")

    buffer = EventBuffer(SERVICE)
    mw = StanchMiddleware(FastAPI(lifespan=lifespan), buffer=buffer, policy=PolicyHolder(SERVICE))
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await mw({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert seen == ["startup", "shutdown"]
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert len(buffer) == 0


async def test_websocket_scope_passes_through() -> None:
    """A websocket scope goes to the app as is and is not recorded."""
    got: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        got.append(scope)

    buffer = EventBuffer(SERVICE)
    mw = StanchMiddleware(app, buffer=buffer, policy=PolicyHolder(SERVICE))
    scope = http_scope("/ws", type="websocket")
    await call_raw(mw, scope)
    assert got == [scope]
    assert len(buffer) == 0


# -- enforcement -------------------------------------------------------------------------------


async def test_open_breaker_answers_503_naming_the_incident_without_calling_the_app() -> None:
    """An open breaker answers 503 with Retry-After and a JSON body naming the incident."""
    stack = build()
    stack.publish(action(ActionKind.CIRCUIT_BREAK, ITEM, open_for=30))
    async with stack.client() as c:
        r = await c.get("/items/42")
        assert (await c.get("/slow")).status_code == 200  # other routes unaffected
    assert r.status_code == 503
    assert r.json() == {"error": "circuit open", "incident": "inc-7", "route": ITEM}
    assert r.headers["retry-after"] == "30"
    assert r.headers["x-stanch-enforced"] == "breaker"
    assert stack.calls == ["slow"]
    assert stack.events()[0] == (T0, "GET", "/items/{item_id}", 503, 0.0, "127.0.0.1", "breaker")


async def test_disabled_route_answers_its_configured_status() -> None:
    """A disabled route answers the status the action configured, and the app is not called."""
    stack = build()
    stack.publish(action(ActionKind.DISABLE_ROUTE, "POST /items", status=410))
    async with stack.client() as c:
        r = await c.post("/items")
    assert r.status_code == 410
    assert r.json()["incident"] == "inc-7"
    assert stack.calls == []
    assert stack.events()[0][3:] == (410, 0.0, "127.0.0.1", "disabled")


async def test_throttled_client_gets_429_with_retry_after_and_others_do_not() -> None:
    """Past its burst a throttled client gets 429 + Retry-After; other clients are unaffected."""
    stack = build()
    stack.publish(action(ActionKind.THROTTLE_CLIENT, "greedy", rate=0.5, burst=2))
    async with stack.client("greedy") as greedy, stack.client("polite") as polite:
        first = [(await greedy.get("/items/1")).status_code for _ in range(2)]
        refused = await greedy.get("/items/1")
        others = [(await polite.get("/items/1")).status_code for _ in range(5)]
    assert first == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert refused.json()["client"] == "greedy"
    assert others == [200] * 5
    assert len(stack.calls) == 7
    assert [e[6] for e in stack.events()].count("throttle") == 1


async def test_blocked_client_gets_403() -> None:
    """A blocked client is answered 403 on every route; the app never sees it."""
    stack = build()
    stack.publish(action(ActionKind.BLOCK_CLIENT, "10.0.0.9"))
    transport = httpx.ASGITransport(app=stack.app, client=("10.0.0.9", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        statuses = [(await c.get(p)).status_code for p in ("/items/1", "/slow", "/nowhere")]
    assert statuses == [403, 403, 403]
    assert stack.calls == []


async def test_load_shed_half_answers_about_half_with_503() -> None:
    """Shedding 0.5 of a route answers about half of its requests with 503."""
    stack = build()
    stack.publish(action(ActionKind.SHED_LOAD, ITEM, fraction=0.5))
    async with stack.client() as c:
        statuses = [(await c.get(f"/items/{i}")).status_code for i in range(100)]
    assert 45 <= statuses.count(503) <= 55
    assert statuses.count(200) == len(stack.calls) == 100 - statuses.count(503)


async def test_half_open_probes_reach_the_app_and_successes_close_the_breaker() -> None:
    """After open_for, probes go to the app; enough successes close the breaker."""
    stack = build()
    stack.publish(action(ActionKind.CIRCUIT_BREAK, ITEM, open_for=10, probes=2))
    async with stack.client() as c:
        assert (await c.get("/items/1")).status_code == 503
        stack.clock.advance(10.0)
        assert (await c.get("/items/2")).status_code == 200
        assert (
            stack.holder.enforcer.breaker_state(ITEM, stack.clock.now()) is BreakerState.HALF_OPEN
        )
        assert (await c.get("/items/3")).status_code == 200
        assert stack.holder.enforcer.breaker_state(ITEM, stack.clock.now()) is BreakerState.CLOSED
        assert (await c.get("/items/4")).status_code == 200
    assert stack.calls == ["item 2", "item 3", "item 4"]


async def test_app_errors_feed_an_armed_breaker_until_it_opens() -> None:
    """The app's own 500s are recorded to a closed breaker, which trips and then answers 503."""
    stack = build()
    rule = BreakerRule("act-x", start_open=False, open_for_s=30.0, min_calls=4)
    policy = Policy(SERVICE, 1, {"GET /fail": RouteRule("GET /fail", "inc-7", breaker=rule)})
    stack.holder.publish(policy, T0)
    async with stack.client() as c:
        statuses = [(await c.get("/fail")).status_code for _ in range(6)]
    assert statuses == [500, 500, 500, 500, 503, 503]
    assert stack.calls == ["fail"] * 4


# -- failing open ------------------------------------------------------------------------------


class ExplodingEnforcer(Enforcer):
    """An enforcer whose decide() fails, as a bug in a rule might."""

    def decide(self, now: float, route: str, client: str) -> Verdict | None:
        raise ZeroDivisionError("bad rule")


class CountingEnforcer(Enforcer):
    """An enforcer that counts the decisions it was asked for."""

    decisions: int = 0

    def decide(self, now: float, route: str, client: str) -> Verdict | None:
        type(self).decisions += 1
        return super().decide(now, route, client)


class BrokenBuffer(EventBuffer):
    """A buffer whose push fails."""

    def push(self, item: RawEvent) -> None:
        raise MemoryError("no room")


async def test_enforcer_failure_fails_open_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    """A decide() that raises lets the app answer, is counted each time, and logged once."""
    stack = build()
    assert stack.mw is not None
    policy = Policy.from_actions(SERVICE, 1, [action(ActionKind.BLOCK_CLIENT, "x")])
    stack.holder.enforcer = ExplodingEnforcer(policy, T0)
    with caplog.at_level(logging.ERROR, logger="stanch.middleware"):
        async with stack.client() as c:
            answers = [(await c.get("/items/5")).json() for _ in range(3)]
    assert answers == [{"id": 5}] * 3
    assert stack.mw.internal_errors == 3
    assert len(caplog.records) == 1
    assert "ZeroDivisionError" in caplog.records[0].getMessage()


async def test_buffer_failure_fails_open_and_still_feeds_the_breaker() -> None:
    """A push that raises leaves the app's answer intact, is counted; the breaker still learns."""
    stack = build(buffer=BrokenBuffer(SERVICE))
    assert stack.mw is not None
    rule = BreakerRule("act-y", start_open=False, min_calls=2)
    policy = Policy(SERVICE, 1, {"GET /fail": RouteRule("GET /fail", "inc-7", breaker=rule)})
    stack.holder.publish(policy, T0)
    async with stack.client() as c:
        r = await c.get("/items/9")
        fails = [(await c.get("/fail")).status_code for _ in range(3)]
    assert r.status_code == 200
    assert r.json() == {"id": 9}
    assert fails == [500, 500, 503]
    assert stack.mw.internal_errors == 4  # three answered by the app, one by the breaker


async def test_empty_policy_never_asks_the_enforcer() -> None:
    """With an empty policy the enforcer is not consulted at all (the fast path)."""
    stack = build()
    CountingEnforcer.decisions = 0
    stack.holder.enforcer = CountingEnforcer(Policy(SERVICE), T0)
    async with stack.client() as c:
        await c.get("/items/1")
    assert CountingEnforcer.decisions == 0
    stack.holder.enforcer.apply(
        Policy.from_actions(SERVICE, 2, [action(ActionKind.BLOCK_CLIENT, "z")]), T0
    )
    async with stack.client() as c:
        await c.get("/items/1")
    assert CountingEnforcer.decisions == 1


async def test_app_exception_is_recorded_as_500_and_propagates(style: str) -> None:
    """An exception in the app is recorded as a 500 and reaches the caller unchanged."""
    stack = build(style)
    async with stack.client() as c:
        with pytest.raises(RuntimeError, match="boom"):
            await c.get("/boom")
    [event] = stack.events()
    assert event[1:4] == ("GET", "/boom", 500)


async def test_exception_before_response_start_fails_a_half_open_probe() -> None:
    """A raw app raising before any response is a 500: the probe fails, the breaker reopens."""

    async def crashing(scope: Scope, receive: Receive, send: Send) -> None:
        raise ConnectionError("db down")

    crashing.routes = [Route("/items/{item_id}", crashing)]  # type: ignore[attr-defined]
    clock, buffer = SimClock(T0), EventBuffer(SERVICE)
    holder = PolicyHolder(SERVICE, now=T0)
    holder.publish(
        Policy.from_actions(SERVICE, 1, [action(ActionKind.CIRCUIT_BREAK, ITEM, open_for=5)]), T0
    )
    mw = StanchMiddleware(crashing, buffer=buffer, policy=holder, clock=clock.now)
    clock.advance(5.0)
    with pytest.raises(ConnectionError):
        await call_raw(mw, http_scope("/items/1"))
    assert raw(buffer)[0][2:4] == ("/items/{item_id}", 500)
    assert holder.enforcer.breaker_state(ITEM, clock.now()) is BreakerState.OPEN
    assert mw.internal_errors == 0


async def test_exotic_methods_share_one_name() -> None:
    """A non-standard method is recorded as ``OTHER`` so random methods cannot make series."""
    stack = build()
    async with stack.client() as c:
        assert (await c.request("BREW", "/items/1")).status_code == 405
    assert stack.events()[0][1:4] == ("OTHER", "/items/{item_id}", 405)


async def test_cancelled_request_is_recorded_and_frees_its_probe() -> None:
    """A cancelled probe is recorded (499) so the half-open breaker can admit the next one."""
    outcomes = [asyncio.CancelledError(), None]
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app.routes = [Route("/items/{item_id}", app)]  # type: ignore[attr-defined]
    clock, buffer, holder = SimClock(T0), EventBuffer(SERVICE), PolicyHolder(SERVICE, now=T0)
    breaker = action(ActionKind.CIRCUIT_BREAK, ITEM, open_for=5, probes=1)
    holder.publish(Policy.from_actions(SERVICE, 1, [breaker]), T0)
    mw = StanchMiddleware(app, buffer=buffer, policy=holder, clock=clock.now)
    clock.advance(5.0)
    with pytest.raises(asyncio.CancelledError):
        await call_raw(mw, http_scope("/items/1"))
    sent = await call_raw(mw, http_scope("/items/2"))
    assert sent[0]["status"] == 200
    assert seen == ["/items/1", "/items/2"]
    assert [e[3] for e in raw(buffer)] == [499, 200]


async def test_clock_stepping_back_records_zero_latency() -> None:
    """A wall clock that steps back mid-request records latency 0, never a negative one."""
    times = iter([T0, T0 - 3.0])
    buffer = EventBuffer(SERVICE)
    app = make_app(SimClock(T0), [])
    mw = StanchMiddleware(
        app, buffer=buffer, policy=PolicyHolder(SERVICE), clock=lambda: next(times)
    )
    await call_raw(mw, http_scope("/items/1"))
    assert raw(buffer)[0][3:5] == (200, 0.0)


async def test_app_without_routes_records_everything_unmatched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app Stanch finds no routes on still works; every path is ``__unmatched__``, said once."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    buffer = EventBuffer(SERVICE)
    mw = StanchMiddleware(app, buffer=buffer, policy=PolicyHolder(SERVICE))
    with caplog.at_level(logging.WARNING, logger="stanch.middleware"):
        for path in ("/a", "/b"):
            assert (await call_raw(mw, http_scope(path)))[0]["status"] == 204
    assert [e[2] for e in raw(buffer)] == [UNMATCHED, UNMATCHED]
    assert len(caplog.records) == 1
    assert mw.internal_errors == 0
