"""Agents' loss reports: the registry's arithmetic and bounds, the headers, the API, /metrics."""

from __future__ import annotations

import itertools
from random import Random

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanch.server import ServerContext
from stanch.server.agents import ACTIVE_S, AgentHeaderError, AgentRegistry, parse_headers
from stanch.server.auth import Role

from .helpers import T0, Clock, batch, bearer


def test_cumulative_counts_add_only_their_increase() -> None:
    registry = AgentRegistry()
    registry.heard("shop", "a", 0, 10.0)
    registry.heard("shop", "a", 5, 11.0)
    registry.heard("shop", "a", 5, 12.0)  # the same count again (a retried request): nothing new
    registry.heard("shop", "a", 3, 13.0)  # an older request arriving late: nothing new
    registry.heard("shop", "a", 8, 13.5)
    registry.heard("shop", "b", 7, 14.0)
    registry.heard("shop", "b", None, 15.0)  # a request without a count changes no count
    shop = registry.get("shop")
    assert shop is not None
    assert (shop.dropped, shop.last_drop_at) == (8 + 7, 14.0)
    assert shop.instances["a"].dropped == 8
    assert shop.instances["b"].last_seen == 15.0
    assert shop.active(15.0) == 2
    assert shop.active(13.5 + ACTIVE_S + 1) == 1  # "a" was last heard at 13.5


@given(st.lists(st.integers(0, 1_000), min_size=1, max_size=30), st.randoms())
def test_lost_or_reordered_reports_never_count_twice(increments: list[int], rng: Random) -> None:
    """Whatever subset of an instance's reports arrives, in whatever order, the total is its
    highest count that arrived: never more (no double counting), never less."""
    counts = list(itertools.accumulate(increments))
    arrived = [c for c in counts if rng.random() < 0.6] or [counts[0]]
    rng.shuffle(arrived)
    registry = AgentRegistry()
    for i, count in enumerate(arrived):
        registry.heard("shop", "a", count, float(i))
    shop = registry.get("shop")
    assert shop is not None
    assert shop.dropped == max(arrived)


def test_memory_is_bounded_and_the_least_recent_instance_is_forgotten() -> None:
    registry = AgentRegistry(max_agents=3, max_services=2)
    for i, agent in enumerate("abcd"):
        registry.heard("shop", agent, 1, float(i))
    shop = registry.get("shop")
    assert shop is not None
    assert sorted(shop.instances) == ["b", "c", "d"]
    assert shop.dropped == 4  # forgetting an instance keeps what it reported
    registry.heard("cart", "x", 0, 5.0)
    registry.heard("search", "y", 9, 6.0)  # a third service: past max_services
    assert [s.service for s in registry.services()] == ["cart", "shop"]
    assert registry.refused_services == 1
    assert sum(len(s.instances) for s in registry.services()) == 3


@pytest.mark.parametrize(
    ("agent", "dropped", "problem"),
    [
        (None, "3", "needs stanch-agent"),
        ("", None, "1-64 characters"),
        ("a b", None, "1-64 characters"),
        ("x" * 65, None, "1-64 characters"),
        ("pod-1", "-1", "whole number"),
        ("pod-1", "1e3", "whole number"),
        ("pod-1", "9" * 17, "whole number"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(
    agent: str | None, dropped: str | None, problem: str
) -> None:
    with pytest.raises(AgentHeaderError, match=problem):
        parse_headers(agent, dropped)


def test_well_formed_headers() -> None:
    assert parse_headers(None, None) is None
    assert parse_headers("web-7.eu_1", None) == ("web-7.eu_1", None)
    assert parse_headers("web-7", " 42 ") == ("web-7", 42)


async def test_reports_reach_the_api_and_metrics_and_bad_ones_get_400(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    agent = bearer(tokens[Role.AGENT])
    shipped = await client.post(
        "/api/v1/events",
        json=batch(T0 - 1, rps=2),
        headers={**agent, "Stanch-Agent": "web-1", "Stanch-Agent-Dropped": "12"},
    )
    assert shipped.status_code == 202, shipped.text
    clock.t += 5
    polled = await client.get(
        "/api/v1/policy/api",
        headers={**agent, "Stanch-Agent": "web-2", "Stanch-Agent-Dropped": "0"},
    )
    assert polled.status_code == 200
    refused = await client.post(
        "/api/v1/events",
        json=batch(T0, rps=2),
        headers={**agent, "Stanch-Agent": "web 1", "Stanch-Agent-Dropped": "13"},
    )
    assert refused.status_code == 400
    assert "Stanch-Agent".lower() in refused.json()["detail"]
    assert ctx.queue.accepted == 4  # the refused batch was not taken either

    listed = await client.get("/api/v1/agents", headers=bearer(tokens[Role.VIEWER]))
    assert listed.status_code == 200
    (api,) = listed.json()
    assert api["service"] == "api"
    assert (api["dropped"], api["active"], api["last_drop_at"]) == (12, 2, T0)
    assert [i["agent"] for i in api["instances"]] == ["web-2", "web-1"]

    metrics = await client.get("/metrics", headers=agent)
    assert 'stanch_agent_events_dropped_total{service="api"} 12.0' in metrics.text
    assert 'stanch_agents{service="api"} 2.0' in metrics.text
    clock.t += ACTIVE_S + 10
    metrics = await client.get("/metrics", headers=agent)
    assert 'stanch_agents{service="api"} 0.0' in metrics.text


async def test_a_stranger_hears_401_whatever_agent_headers_it_sends(
    client: httpx.AsyncClient,
) -> None:
    for method, path in (("POST", "/api/v1/events"), ("GET", "/api/v1/policy/api")):
        answer = await client.request(method, path, headers={"Stanch-Agent": "not valid!"})
        assert answer.status_code == 401, (path, answer.text)
