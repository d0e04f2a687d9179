"""Agent mode end to end: a real ``stanch serve`` app under uvicorn on 127.0.0.1, and a small
FastAPI app wrapped by ``agent.middleware`` driven through ``httpx.ASGITransport``.

Intervals are short (flush 0.05 s, long-poll 0.5 s, engine windows 0.25 s) and every wait
polls for its condition against a deadline, so the file runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from stanch.agent import AgentConfig, StanchAgent
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.series import SeriesKey
from stanch.core.severity import Severity
from stanch.engine import EngineConfig
from stanch.server import ServerContext, Settings, create_app
from stanch.server.auth import issue_token
from stanch.server.ingest import IngestQueue
from stanch.store import Store

T = TypeVar("T")

HOST = "127.0.0.1"
SERVICE = "shop"
LAG_S = 0.5  # the engine's lag behind the wall clock: an agent's batch lands well within it
ENGINE = EngineConfig(interval_s=0.25)
RUNBOOK = """
version: 1
defaults: {ttl: 10m, verify_within: 1m}
rules:
  - name: pay-errors
    match: {kinds: [error_burst], routes: ["POST /pay"]}
    actions:
      - {kind: circuit_break, mode: approve, params: {open_for: 60s}}
  - name: flood
    match: {kinds: [traffic_spike], routes: ["* /*"]}
    actions:
      - {kind: throttle_client, mode: approve, params: {rate: 0.5, burst: 1}}
"""


# ---------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """``stanch serve`` in-process: uvicorn in a thread with its own event loop, real TCP."""

    def __init__(self, db_url: str, port: int, runbook: Path, **settings: Any) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"
        options: dict[str, Any] = {"interval_s": 0.05, "step_lag_s": LAG_S, **settings}
        self.ctx = ServerContext.open(
            Settings(db=db_url, runbook=runbook, host=HOST, port=port, run_loop=True, **options),
            engine_config=ENGINE,
        )
        app = create_app(self.ctx, close_on_shutdown=True)
        config = uvicorn.Config(
            app, host=HOST, port=port, log_config=None, log_level="warning", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name=f"stanch-serve-{port}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "the server did not stop"

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop: the engine is not thread-safe, handlers share it."""

        async def run() -> T:
            return fn()

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def totals(self, route: str = "*") -> tuple[int, int]:
        """(requests, errors) the engine aggregated for one series of the shop."""

        def read() -> tuple[int, int]:
            total = self.ctx.engine.totals.get(SeriesKey(SERVICE, route))
            return (0, 0) if total is None else (total.requests, total.errors)

        return self.call(read)

    def accepted(self) -> int:
        return self.call(lambda: self.ctx.queue.accepted)

    def late(self) -> int:
        return self.call(lambda: self.ctx.engine.windows.late)

    def pending_action(self, kind: AlertKind, route: str, clients: tuple[str, ...] = ()) -> str:
        """Fire an alert that the runbook answers with an approve-mode action; its id."""

        def fire() -> str:
            now = self.ctx.now()
            alert = Alert(
                fingerprint=f"test-{kind}-{route}",
                kind=kind,
                service=SERVICE,
                route=route,
                signal="test",
                severity=Severity.SEV2,
                status=AlertStatus.FIRING,
                started_at=now,
                updated_at=now,
                observed=1.0,
                expected=0.0,
                score=10.0,
                explanation=f"{kind} on {route} (test)",
                source="test",
                clients=clients,
            )
            incident = self.ctx.engine.ingest_alert(alert, now)
            assert incident is not None
            (action,) = self.ctx.engine.incident_actions(incident)
            return action.id

        return self.call(fire)

    def approve(self, action_id: str) -> None:
        """Approve through the engine (the API path is tested once, in its own test)."""

        def decide() -> None:
            self.ctx.engine.decide(action_id, True, actor="test", now=self.ctx.now())
            self.ctx.changed()

        self.call(decide)

    def policy_version(self) -> int:
        def read() -> int:
            policy = self.ctx.engine.policies.get(SERVICE)
            return policy.version if policy else 0

        return self.call(read)


@pytest.fixture
def runbook(tmp_path: Path) -> Path:
    path = tmp_path / "runbook.yaml"
    path.write_text(RUNBOOK, encoding="utf-8")
    return path


@pytest.fixture
def tokens(db_url: str) -> dict[str, str]:
    """Tokens made the way ``stanch token create`` makes them, before the server starts."""
    with Store.open(db_url) as store:
        return {
            role: issue_token(store, f"test-{role}", role, created_by="test", now=time.time())[1]
            for role in ("agent", "responder", "viewer")
        }


@pytest.fixture
def servers(db_url: str, runbook: Path, tokens: dict[str, str]) -> Iterator[list[LiveServer]]:
    """Started servers, stopped at teardown if a test left them running."""
    started: list[LiveServer] = []
    yield started
    for server in started:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture
def serve(servers: list[LiveServer], db_url: str, runbook: Path) -> Callable[..., LiveServer]:
    """Start a server on ``port`` (a free one by default) over the test's database."""

    def start(port: int | None = None, **settings: Any) -> LiveServer:
        server = LiveServer(db_url, port or free_port(), runbook, **settings).start()
        servers.append(server)
        return server

    return start


@pytest.fixture
def server(serve: Callable[..., LiveServer]) -> LiveServer:
    return serve()


@pytest.fixture
def agents() -> Iterator[Callable[..., StanchAgent]]:
    """A factory of agents with test-sized intervals; each is stopped at teardown."""
    made: list[StanchAgent] = []

    def make(
        url: str,
        token: str,
        *,
        start: bool = True,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> StanchAgent:
        config: dict[str, Any] = {
            "flush_interval_s": 0.05,
            "poll_wait_s": 0.5,
            "timeout_s": 2.0,
            "min_backoff_s": 0.05,
            "max_backoff_s": 0.4,
            **options,
        }
        agent = StanchAgent(AgentConfig(url, token, SERVICE, version="1.0", **config), clock=clock)
        made.append(agent)
        return agent.start() if start else agent

    yield make
    for agent in made:
        agent.stop(timeout=2.0)


# ---------------------------------------------------------------------------- the service


def shop_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> JSONResponse:
        return JSONResponse({"error": "boom"}, status_code=500)

    @app.post("/pay")
    async def pay() -> dict[str, bool]:
        return {"paid": True}

    return app


@contextlib.asynccontextmanager
async def shop(agent: StanchAgent) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shop app, wrapped by ``agent``'s middleware, over ASGI."""
    transport = httpx.ASGITransport(app=agent.middleware(shop_app()))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        yield client


async def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def settled(agent: StanchAgent) -> bool:
    """Nothing waits in the agent: its buffer and backlog are empty."""
    return len(agent.buffer) == 0 and agent.backlog == 0


def dropped(agent: StanchAgent, count: int) -> Callable[[], bool]:
    return lambda: agent.dropped == count


def accounted(agent: StanchAgent, recorded: int) -> bool:
    """Every recorded event is shipped, dropped (counted) or still waiting: none vanished."""
    waiting = len(agent.buffer) + agent.backlog
    return agent.stats.shipped + agent.dropped + waiting == recorded


# ---------------------------------------------------------------------------- tests


async def test_recorded_events_reach_the_server_engine_none_lost(
    server: LiveServer, tokens: dict[str, str], agents: Callable[..., StanchAgent]
) -> None:
    """Every request the middleware records is shipped, accepted and aggregated per route."""
    agent = agents(server.url, tokens["agent"])
    async with shop(agent) as client:
        for i in range(60):
            assert (await client.get("/ok", headers={"x-client-id": f"c{i % 3}"})).is_success
        for _ in range(15):
            assert (await client.get("/boom")).status_code == 500
        for _ in range(25):
            assert (await client.post("/pay")).is_success
    await eventually(lambda: agent.stats.shipped == 100, "the agent shipped all 100 events")
    assert agent.dropped == 0
    assert agent.stats.failed_posts == 0
    await eventually(lambda: server.totals() == (100, 15), "the engine aggregated 100 requests")
    assert server.totals("GET /ok") == (60, 0)
    assert server.totals("GET /boom") == (15, 15)
    assert server.totals("POST /pay") == (25, 0)
    assert server.accepted() == 100
    assert server.late() == 0
    # And what Prometheus would scrape from the server says the same.
    async with httpx.AsyncClient(base_url=server.url) as scraper:
        assert (await scraper.get("/metrics")).status_code == 401
        bearer = {"authorization": f"Bearer {tokens['agent']}"}
        metrics = await scraper.get("/metrics", headers=bearer)
    assert metrics.status_code == 200, metrics.text
    assert 'stanch_requests_total{route="*",service="shop"} 100.0' in metrics.text
    assert 'stanch_errors_total{route="GET /boom",service="shop"} 15.0' in metrics.text


async def test_an_approved_action_reaches_every_instance_within_two_seconds(
    server: LiveServer, tokens: dict[str, str], agents: Callable[..., StanchAgent]
) -> None:
    """Approved over the API, a breaker (503) and a client throttle (429) reach two instances
    well within 2 s through the long-poll; unchanged policies are not downloaded again."""
    instances = [agents(server.url, tokens["agent"], poll_wait_s=1.0) for _ in range(2)]
    await eventually(
        lambda: all(a.stats.policy_updates == 1 for a in instances), "the first policy"
    )
    responder = {"authorization": f"Bearer {tokens['responder']}"}
    async with httpx.AsyncClient(base_url=server.url, headers=responder) as api:

        async def approve(action_id: str) -> float:
            """Approve over HTTP; seconds until both instances enforce the new policy."""
            before = [a.stats.policy_version for a in instances]
            pending = (await api.get("/api/v1/actions", params={"state": "pending"})).json()
            assert [a["id"] for a in pending] == [action_id]
            answer = await api.post(f"/api/v1/actions/{action_id}/approve", json={"reason": "t"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "applied"
            return await eventually(
                lambda: all(
                    a.stats.policy_version > v for a, v in zip(instances, before, strict=True)
                ),
                "both instances have the new policy",
                timeout=2.0,
            )

        async with shop(instances[0]) as one, shop(instances[1]) as two:
            assert (await one.post("/pay")).status_code == 200
            took = await approve(server.pending_action(AlertKind.ERROR_BURST, "POST /pay"))
            assert took < 2.0
            for client in (one, two):
                refused = await client.post("/pay")
                assert refused.status_code == 503
                assert refused.headers["x-stanch-enforced"] == "breaker"
                assert (await client.get("/ok")).status_code == 200

            greedy = {"x-client-id": "greedy"}
            action = server.pending_action(AlertKind.TRAFFIC_SPIKE, "GET /ok", ("greedy",))
            assert await approve(action) < 2.0
            for client in (one, two):
                assert (await client.get("/ok", headers=greedy)).status_code == 200  # the burst
                throttled = await client.get("/ok", headers=greedy)
                assert throttled.status_code == 429
                assert throttled.headers["x-stanch-enforced"] == "throttle"
                assert (await client.get("/ok", headers={"x-client-id": "calm"})).status_code == 200
    # Idle long-polls end in 304s: the policy is fetched once per change, not once per poll.
    updates = [a.stats.policy_updates for a in instances]
    assert updates == [3, 3]
    await asyncio.sleep(1.2)
    assert [a.stats.policy_updates for a in instances] == updates
    assert all(a.stats.policy_version == server.policy_version() for a in instances)


async def test_fail_static_backlog_and_restart(
    serve: Callable[..., LiveServer], tokens: dict[str, str], agents: Callable[..., StanchAgent]
) -> None:
    """With the server gone the last policy stays in force and other routes serve normally;
    batches wait in a bounded backlog (overflow counted in ``agent.dropped``) and retries back
    off; a server restarted on the same port and database receives the backlog."""
    first = serve()
    agent = agents(first.url, tokens["agent"], batch_size=10, backlog_batches=3)
    first.approve(first.pending_action(AlertKind.ERROR_BURST, "POST /pay"))
    version = first.policy_version()
    await eventually(lambda: agent.stats.policy_version == version, "the agent has the breaker")
    recorded = 0
    async with shop(agent) as client:
        assert (await client.post("/pay")).status_code == 503
        assert (await client.get("/ok")).status_code == 200
        recorded += 2
        await eventually(lambda: agent.stats.shipped == recorded, "shipped before the outage")

        first.stop()
        outage_started = time.monotonic()
        for i in range(100):
            if i % 10 == 0:  # let the shipper drain between bursts, as steady traffic would
                await eventually(lambda: len(agent.buffer) == 0, "the shipper drained the buffer")
            assert (await client.get("/ok")).status_code == 200
            recorded += 1
        assert (await client.post("/pay")).status_code == 503  # fail-static: still enforced
        recorded += 1
        await eventually(lambda: agent.stats.failed_posts >= 4, "several failed attempts")
        await eventually(lambda: len(agent.buffer) == 0, "the shipper drained the buffer")
        outage_s = time.monotonic() - outage_started
        assert agent.policy.enforcer.policy.version == version
        assert "policy" in " ".join(agent.stats.errors)
        assert 0 < agent.backlog <= 3 * 10  # three batches of ten at most
        assert agent.stats.dropped > 0
        assert accounted(agent, recorded)
        # Without backoff the shipper would have tried every 0.05 s.
        assert agent.stats.failed_posts < outage_s / 0.05 / 2

        backlog = agent.backlog
        shipped = agent.stats.shipped
        second = serve(first.port)
        await eventually(lambda: agent.backlog == 0, "the backlog is shipped after the restart")
        assert agent.stats.shipped == shipped + backlog
        assert accounted(agent, recorded)
        await eventually(lambda: second.totals()[0] == backlog, "the new engine counted them")
        assert second.late() == 0
        assert second.policy_version() == version  # the policy survived the restart
        assert (await client.post("/pay")).status_code == 503
        assert agent.stats.policy_version == version


async def test_an_approval_reaches_the_agent_while_the_server_ingests_a_backlog(
    serve: Callable[..., LiveServer], tokens: dict[str, str], agents: Callable[..., StanchAgent]
) -> None:
    """A backlog of 200,000 queued events (seconds of aggregation) does not hold up an
    approval: the step loop ingests in slices, so the action still arrives within 2 s."""
    server = serve(ingest_capacity=400_000)
    agent = agents(server.url, tokens["agent"])
    await eventually(lambda: agent.stats.policy_updates == 1, "the first policy")
    action = server.pending_action(AlertKind.ERROR_BURST, "POST /pay")

    def flood() -> None:
        event = (server.ctx.now(), "GET", "/flood", 200, 0.01, "", "")
        assert server.ctx.queue.offer("flood", "", [event] * 200_000)

    server.call(flood)
    await asyncio.sleep(0.2)  # the step loop is into the backlog now
    responder = {"authorization": f"Bearer {tokens['responder']}"}
    async with httpx.AsyncClient(base_url=server.url, headers=responder) as api:
        started = time.monotonic()
        answer = await api.post(f"/api/v1/actions/{action}/approve", json={})
        assert answer.status_code == 200
        await eventually(
            lambda: agent.stats.policy_version > 0, "the agent has the breaker", timeout=10
        )
        took = time.monotonic() - started
        assert took < 2.0, f"the approval took {took:.1f}s to reach the agent"
        # And no request waits long on the rest of the backlog.
        slowest = 0.0
        flooded = SeriesKey("flood", "*")
        while True:
            sent = time.monotonic()
            assert (await api.get("/api/v1/health")).status_code == 200
            done = server.call(lambda: server.ctx.engine.totals.get(flooded)) is not None
            slowest = max(slowest, time.monotonic() - sent)
            if done:
                break
            assert time.monotonic() - started < 30, "the backlog was not ingested"
            await asyncio.sleep(0.02)
    assert slowest < 1.0, f"a request waited {slowest:.1f}s behind the backlog"


def test_the_ingest_queue_hands_over_slices_and_due_batches_exactly() -> None:
    """Slices split batches, ``before`` takes only batches with an older event; every event
    comes out once, in order, and the count of what waits stays exact."""
    queue = IngestQueue(100)
    old = [(float(t), "GET", "/a", 200, 0.1, "", "") for t in (5, 1, 7)]
    fresh = [(float(t), "GET", "/b", 200, 0.1, "", "") for t in range(10, 20)]
    assert queue.offer("s", "v", fresh)
    assert queue.offer("s", "v", old)
    assert [e.ts for e in queue.drain(before=2.0)] == [5.0, 1.0, 7.0]
    assert len(queue) == 10
    assert queue.drain(before=2.0) == []
    assert [e.ts for e in queue.drain(4)] == [10.0, 11.0, 12.0, 13.0]
    assert len(queue) == 6
    assert [e.ts for e in queue.drain()] == [float(t) for t in range(14, 20)]
    assert len(queue) == 0
    assert queue.accepted == 13


@pytest.mark.parametrize("server_state", ["refusing", "silent"])
async def test_requests_never_wait_on_an_unreachable_or_silent_server(
    server_state: str,
    server: LiveServer,
    tokens: dict[str, str],
    agents: Callable[..., StanchAgent],
) -> None:
    """Through the middleware a request takes as long with the server refusing connections,
    or accepting them and never answering, as with the server up: nothing waits on it."""

    async def latencies(agent: StanchAgent) -> list[float]:
        async with shop(agent) as client:
            for _ in range(20):  # warm up: route cache, connection, code paths
                await client.get("/ok")
            out = []
            for _ in range(300):
                start = time.perf_counter()
                response = await client.get("/ok")
                out.append(time.perf_counter() - start)
                assert response.status_code == 200
        return out

    up = await latencies(agents(server.url, tokens["agent"]))
    with contextlib.ExitStack() as stack:
        if server_state == "refusing":
            url = f"http://{HOST}:{free_port()}"
        else:  # accepts TCP connections (the kernel's backlog) and never reads or answers
            silent = stack.enter_context(socket.socket())
            silent.bind((HOST, 0))
            silent.listen(8)
            url = f"http://{HOST}:{silent.getsockname()[1]}"
        agent = agents(url, tokens["agent"], timeout_s=5.0)
        down = await latencies(agent)
        if server_state == "silent":
            assert agent.stats.failed_posts == 0  # still waiting on its first answer
        else:
            assert agent.stats.failed_posts > 0
        assert agent.stats.shipped == 0
        # Read while the shipper may hold a batch between the buffer and the backlog: wait
        # for a consistent view; an event that vanished never gives one.
        await eventually(lambda: accounted(agent, 320), "all 320 events accounted for")
    # A request that waited on the server would take the agent's 5 s timeout.
    assert max(down) < 0.25
    assert statistics.median(down) < statistics.median(up) + 0.001


@pytest.mark.parametrize("credential", ["garbage", "viewer"])
async def test_a_batch_refused_for_good_is_dropped_and_counted_without_wedging(
    credential: str,
    server: LiveServer,
    tokens: dict[str, str],
    agents: Callable[..., StanchAgent],
) -> None:
    """A batch refused with 401 (not a token) or 403 (a viewer's token) is dropped and counted
    at once; later batches are still tried, and the app serves every request."""
    token = "stanch_nope_nope" if credential == "garbage" else tokens["viewer"]
    agent = agents(server.url, token)
    async with shop(agent) as client:
        for burst in (1, 2):
            for _ in range(10):
                assert (await client.get("/ok")).status_code == 200
            await eventually(dropped(agent, 10 * burst), "the refused batch is dropped")
            await eventually(lambda: settled(agent), "nothing left waiting")
    assert agent.stats.shipped == 0
    assert agent.stats.failed_posts >= 2
    status = "401" if credential == "garbage" else "403"
    assert f"HTTP {status}" in " ".join(agent.stats.errors)
    assert server.accepted() == 0
    if credential == "viewer":  # a viewer may read the policy: only shipping is refused
        assert agent.stats.policy_updates == 1


async def test_a_full_server_buffer_is_retried_until_accepted(
    serve: Callable[..., LiveServer], tokens: dict[str, str], agents: Callable[..., StanchAgent]
) -> None:
    """503 + Retry-After from a full ingest buffer keeps the batch for a retry: nothing lost."""
    server = serve(ingest_capacity=30, interval_s=0.25)
    agent = agents(server.url, tokens["agent"], batch_size=10, max_backoff_s=0.2)
    async with shop(agent) as client:
        for _ in range(120):
            assert (await client.get("/ok")).status_code == 200
    await eventually(lambda: agent.stats.shipped == 120, "every event accepted in the end")
    assert agent.stats.failed_posts > 0  # the server did push back
    assert "HTTP 503" in " ".join(agent.stats.errors)
    assert agent.dropped == 0
    # Accepted means counted: events delayed past the engine's lag by the retries are folded
    # into the oldest open window (and counted as late), never lost to the totals.
    await eventually(lambda: server.totals()[0] == 120, "the engine aggregated all 120")


async def test_events_too_old_for_the_server_are_dropped_and_fresh_ones_kept(
    server: LiveServer, tokens: dict[str, str], agents: Callable[..., StanchAgent]
) -> None:
    """After a long outage a batch mixing events past ``max_event_age_s`` with fresh ones ships
    the fresh ones; the old ones are dropped and counted instead of sinking the batch (422)."""
    offset = [-400.0]
    agent = agents(server.url, tokens["agent"], start=False, clock=lambda: time.time() + offset[0])
    async with shop(agent) as client:
        for _ in range(5):
            await client.get("/ok")
        offset[0] = 0.0
        for _ in range(7):
            await client.get("/ok")
    assert agent.flush()  # one batch of 12, shipped by hand
    assert (agent.stats.shipped, agent.dropped, agent.stats.batches) == (7, 5, 1)
    assert server.accepted() == 7
    # The server knows what it never received: the batch carried the instance's loss count.
    async with httpx.AsyncClient(base_url=server.url) as operator:
        listed = await operator.get(
            "/api/v1/agents", headers={"authorization": f"Bearer {tokens['viewer']}"}
        )
    assert listed.status_code == 200, listed.text
    (heard,) = listed.json()
    assert (heard["service"], heard["dropped"]) == (SERVICE, 5)
    assert [i["agent"] for i in heard["instances"]] == [agent.instance]
