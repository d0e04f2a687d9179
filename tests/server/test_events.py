"""Agents' contract: event batches (JSON or gzip, all or nothing) and the policy long-poll."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx

from stanch.core.policy import Policy, RouteRule
from stanch.server import ServerContext
from stanch.server.auth import Role

from .helpers import Clock, batch, bearer


async def test_a_batch_is_queued_then_stepped_into_the_engine(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """202 with the count; the events wait in the queue until the step loop drains them."""
    body = batch(clock.t)
    response = await client.post("/api/v1/events", json=body, headers=bearer(tokens[Role.AGENT]))
    assert response.status_code == 202
    assert response.json() == {"accepted": 40}
    assert len(ctx.queue) == 40
    clock.t += 2
    ctx.step()
    assert len(ctx.queue) == 0
    assert ctx.engine.points_seen > 0


async def test_gzip_bodies_are_accepted(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """Content-Encoding: gzip is inflated before validation."""
    raw = gzip.compress(json.dumps(batch(clock.t)).encode())
    headers = {
        **bearer(tokens[Role.AGENT]),
        "Content-Encoding": "gzip",
        "Content-Type": "application/json",
    }
    response = await client.post("/api/v1/events", content=raw, headers=headers)
    assert response.status_code == 202, response.text
    assert len(ctx.queue) == 40


async def test_a_bad_event_refuses_the_whole_batch_naming_its_index(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """One wrong status refuses the batch (422) and names events[17][3]; nothing is queued."""
    body = batch(clock.t)
    body["events"][17][3] = "two hundred"
    response = await client.post("/api/v1/events", json=body, headers=bearer(tokens[Role.AGENT]))
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "events", 17, 3]
    assert len(ctx.queue) == 0


async def test_events_outside_the_time_window_are_refused(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """An event an hour old, or an epoch-zero timestamp, is refused with its index."""
    body = batch(clock.t)
    body["events"][3][0] = clock.t - 3600
    body["events"][5][0] = 0
    response = await client.post("/api/v1/events", json=body, headers=bearer(tokens[Role.AGENT]))
    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]] == [
        ["body", "events", 3, 0],
        ["body", "events", 5, 0],
    ]
    assert len(ctx.queue) == 0


async def test_a_full_buffer_answers_503_and_keeps_what_it_accepted(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """Past capacity the agent hears 503 + Retry-After; every accepted event is still there."""
    headers = bearer(tokens[Role.AGENT])
    accepted = 0
    status = 202
    while status == 202:
        response = await client.post("/api/v1/events", json=batch(clock.t), headers=headers)
        status = response.status_code
        accepted += response.json().get("accepted", 0)
    assert status == 503
    assert response.headers["retry-after"] == "1"
    assert len(ctx.queue) == accepted == ctx.queue.accepted
    assert ctx.queue.refused == 40
    assert len(ctx.queue.drain()) == accepted


async def test_policy_has_an_etag_and_answers_304_when_unchanged(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """The empty policy is version 0; If-None-Match with that ETag is 304 at once."""
    headers = bearer(tokens[Role.AGENT])
    first = await client.get("/api/v1/policy/api", headers=headers)
    assert first.status_code == 200
    assert first.headers["etag"] == '"0"'
    assert Policy.from_dict(first.json()) == Policy("api")
    again = await client.get("/api/v1/policy/api", headers={**headers, "If-None-Match": '"0"'})
    assert again.status_code == 304


def _publish_disabled_route(ctx: ServerContext) -> None:
    rule = RouteRule("POST /pay", "INC-9001", disabled_status=503)
    ctx.engine.policies["api"] = Policy("api", 1, {"POST /pay": rule})
    ctx.changed()


async def test_long_poll_returns_when_the_policy_changes(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A waiting agent gets the new policy as soon as it is published, not after the wait."""
    headers = {**bearer(tokens[Role.AGENT]), "If-None-Match": '"0"'}
    poll = asyncio.create_task(client.get("/api/v1/policy/api?wait=10", headers=headers))
    await asyncio.sleep(0.05)
    assert not poll.done()
    _publish_disabled_route(ctx)
    response = await asyncio.wait_for(poll, 2)
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert "POST /pay" in response.json()["routes"]


async def test_long_poll_times_out_with_304(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """With nothing changing, the long-poll ends with 304 after the wait."""
    headers = {**bearer(tokens[Role.AGENT]), "If-None-Match": '"0"'}
    response = await client.get("/api/v1/policy/api?wait=0.1", headers=headers)
    assert response.status_code == 304
    too_long = await client.get("/api/v1/policy/api?wait=31", headers=headers)
    assert too_long.status_code == 422
