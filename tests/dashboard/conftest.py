"""Fixtures for the dashboard: a small control plane with one incident waiting for a human,
hostile strings in the places people control, and a signed-in httpx client per role.

The engine runs on a settable clock with a 30 s warm-up; traffic goes straight into the
engine (as if from an agent), one batch per simulated second, so the whole world is ready in
well under a second.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from stanch.core.config import ConfigKeySpec, ConfigStore
from stanch.core.detection_config import DetectionConfig
from stanch.core.events import RequestEvent
from stanch.engine import EngineConfig
from stanch.server import ServerContext, Settings, create_app
from stanch.server.auth import Role, issue_token
from stanch.server.dashboard.sessions import LOGIN_COOKIE

T0 = 1_800_000_000.0
XSS = "<script>window.__xss=1</script>"
XSS_ROUTE = f"GET /items/{XSS}"  # a route template as a hostile agent could report it

RUNBOOK = """
version: 1
defaults: {ttl: 10m, verify_within: 1m}
rules:
  - name: pay-errors
    description: payments failing get a breaker, after a human says so
    match: {kinds: [error_burst], routes: ["POST /pay"]}
    actions:
      - {kind: circuit_break, mode: approve, params: {open_for: 10s}}
"""


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def traffic(t: float, error_ratio: float, rng: random.Random) -> list[RequestEvent]:
    """One second of requests on three routes; POST /pay fails at ``error_ratio``."""
    events = []
    for route, rps in (("POST /pay", 20), ("GET /ping", 20), (XSS_ROUTE, 5)):
        method, _, path = route.partition(" ")
        for i in range(rps):
            failed = route == "POST /pay" and rng.random() < error_ratio
            latency = 0.02 * (1 + rng.random())
            client = f"c{rng.randrange(30)}"
            events.append(
                RequestEvent(
                    t + i / rps, "api", method, path, 500 if failed else 200, latency, client
                )
            )
    return events


def drive(ctx: ServerContext, clock: Clock, seconds: int, error_ratio: float = 0.0) -> None:
    rng = random.Random(int(clock.t))
    for _ in range(seconds):
        ctx.engine.ingest(traffic(clock.t, error_ratio, rng))
        clock.t += 1.0
        ctx.step()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[ServerContext]:
    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    settings = Settings(db=db_url, runbook=runbook, run_loop=False, step_lag_s=0.0)
    config = EngineConfig(detection=DetectionConfig(warmup_s=30.0))
    opened = ServerContext.open(settings, clock=clock, engine_config=config)
    store = ConfigStore(
        "api",
        [
            ConfigKeySpec("pay.timeout_ms", "int", 2000, minimum=1),
            ConfigKeySpec("flag", "bool", False),
        ],
        now=clock.t,
    )
    opened.engine.add_config_store(store)
    yield opened
    opened.close()


@pytest.fixture
def incident_ctx(ctx: ServerContext, app: FastAPI, clock: Clock) -> ServerContext:
    """60 quiet seconds, then a config change and an error burst on POST /pay: INC-0001 is
    open with its breaker (ACT-0001) waiting for approval. (After ``app``: the dashboard
    records history from the moment it is mounted.)"""
    drive(ctx, clock, 60)
    ctx.engine.change_config("api", clock.t, {"pay.timeout_ms": 80}, author="bob", reason=XSS)
    drive(ctx, clock, 12, error_ratio=0.6)
    assert ctx.engine.incidents["INC-0001"].is_open
    assert ctx.engine.actions["ACT-0001"].state == "pending"
    return ctx


@pytest.fixture
def app(ctx: ServerContext) -> FastAPI:
    return create_app(ctx)


@pytest.fixture
def tokens(ctx: ServerContext) -> dict[Role, str]:
    return {
        role: issue_token(ctx.store, f"{role.value}-person", role.value, created_by="t", now=T0)[1]
        for role in Role
    }


async def sign_in(client: httpx.AsyncClient, token: str, next_path: str = "/") -> httpx.Response:
    form = await client.get("/login")
    assert form.status_code == 200
    nonce = client.cookies.get(LOGIN_COOKIE)
    assert nonce
    return await client.post("/login", data={"csrf": nonce, "token": token, "next": next_path})


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stanch.test") as c:
        yield c


async def _signed_in(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stanch.test") as client:
        answer = await sign_in(client, token)
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture
async def viewer(app: FastAPI, tokens: dict[Role, str]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _signed_in(app, tokens[Role.VIEWER]):
        yield client


@pytest.fixture
async def responder(app: FastAPI, tokens: dict[Role, str]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _signed_in(app, tokens[Role.RESPONDER]):
        yield client


@pytest.fixture
async def admin(app: FastAPI, tokens: dict[Role, str]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _signed_in(app, tokens[Role.ADMIN]):
        yield client


def csrf_of(html: str) -> str:
    """The session's CSRF token, as the page's forms carry it."""
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
