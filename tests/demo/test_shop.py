"""The demo shop's routes, its config-driven failures, and the in-process driver that calls it."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from stanch.clock import SimClock, WallClock
from stanch.core.config import ConfigStore
from stanch.demo import driver
from stanch.demo.shop import (
    CATALOG_SIZE,
    DEMO_PASSWORD,
    SEARCH_TERMS,
    build_catalog,
    create_shop,
    shop_config,
)
from stanch.demo.traffic import RequestSpec

T0 = 1_764_000_000.0
T = TypeVar("T")


@dataclass
class Shop:
    app: FastAPI
    config: ConfigStore
    clock: SimClock

    def call(self, method: str, path: str, body: Any = None, client: str = "client-001") -> Any:
        """Send one request through ``driver.send``; returns (status, parsed JSON body)."""
        raw = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        status, content = run(
            driver.send(self.app, RequestSpec(self.clock.t, client, method, path, raw))
        )
        return status, json.loads(content)

    def statuses(self, method: str, path: str, body: Any, n: int) -> list[int]:
        """``n`` identical requests one second apart, in one event loop."""
        raw = json.dumps(body).encode()

        async def many() -> list[int]:
            out = []
            for _ in range(n):
                self.clock.advance(1.0)
                spec = RequestSpec(self.clock.t, "client-001", method, path, raw)
                out.append((await driver.send(self.app, spec))[0])
            return out

        return run(many())

    def latencies(self, method: str, path: str, n: int, body: bytes = b"") -> list[float]:
        """Simulated seconds each of ``n`` requests spent, as the clock saw it."""

        async def many() -> list[float]:
            out = []
            for _ in range(n):
                self.clock.advance(1.0)
                before = self.clock.t
                await driver.send(self.app, RequestSpec(before, "c", method, path, body))
                out.append(self.clock.t - before)
            return out

        return run(many())


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def shop() -> Shop:
    clock = SimClock(T0)
    config = shop_config(T0)
    return Shop(create_shop(config, clock, seed=7), config, clock)


CHECKOUT = {"items": [{"product_id": 1, "qty": 2}], "card_token": "tok_1"}


def test_products_are_paginated(shop: Shop) -> None:
    """GET /products pages through the whole catalogue, per_page at a time."""
    status, first = shop.call("GET", "/products")
    _, last = shop.call("GET", "/products?page=3&per_page=20")
    assert status == 200
    assert (first["total"], len(first["items"]), len(last["items"])) == (CATALOG_SIZE, 20, 10)
    assert first["items"][0]["id"] == 1
    assert shop.call("GET", "/products?page=0")[0] == 422


def test_product_by_id_and_unknown_ids(shop: Shop) -> None:
    """GET /products/{id} answers known ids, 404 for unknown ones, 422 for non-integers."""
    status, product = shop.call("GET", "/products/5")
    assert (status, product) == (200, build_catalog(7)[5])
    assert shop.call("GET", "/products/9001") == (404, {"detail": "product 9001 not found"})
    assert shop.call("GET", "/products/abc")[0] == 422


def test_search_is_capped_by_max_results_read_per_request(shop: Shop) -> None:
    """GET /search returns the matches, at most search.max_results, read at request time."""
    names = [p["name"] for p in build_catalog(7).values()]
    term = max(SEARCH_TERMS, key=lambda w: sum(w in n for n in names))
    expected = sum(term in n for n in names)
    status, found = shop.call("GET", f"/search?q={term}")
    assert status == 200
    assert found["count"] == len(found["results"]) == expected > 1
    shop.config.set(shop.clock.t, {"search.max_results": 1}, author="test")
    _, capped = shop.call("GET", f"/search?q={term}")
    assert (capped["count"], len(capped["results"])) == (expected, 1)
    assert shop.call("GET", "/search")[0] == 422


def test_cart_validates_its_body(shop: Shop) -> None:
    """POST /cart opens and extends carts; bad bodies are 422, unknown products 404."""
    status, cart = shop.call("POST", "/cart", {"product_id": 3, "qty": 2})
    assert status == 200
    assert cart["cart_id"].startswith("cart-")
    _, more = shop.call("POST", "/cart", {"product_id": 4, "cart_id": cart["cart_id"]})
    assert [i["product_id"] for i in more["items"]] == [3, 4]
    assert shop.call("POST", "/cart", {"product_id": 3, "qty": 0})[0] == 422
    assert shop.call("POST", "/cart", {"qty": 1})[0] == 422
    assert shop.call("POST", "/cart", b"{not json")[0] == 422
    assert shop.call("POST", "/cart", {"product_id": 999})[0] == 404
    assert shop.call("POST", "/cart", {"product_id": 1, "cart_id": "cart-x"})[0] == 404


def test_checkout_by_items_or_cart(shop: Shop) -> None:
    """POST /checkout pays for listed items or a cart: exactly one of the two, and a token."""
    status, order = shop.call("POST", "/checkout", CHECKOUT)
    price = build_catalog(7)[1]["price_cents"]
    assert (status, order["total_cents"], order["status"]) == (200, 2 * price, "paid")
    assert order["order_id"].startswith("ord-")
    _, cart = shop.call("POST", "/cart", {"product_id": 2})
    status, _ = shop.call("POST", "/checkout", {"cart_id": cart["cart_id"], "card_token": "t"})
    assert status == 200
    assert shop.call("POST", "/checkout", {"cart_id": cart["cart_id"], "card_token": "t"})[0] == 404
    assert shop.call("POST", "/checkout", {"card_token": "t"})[0] == 422
    assert shop.call("POST", "/checkout", {**CHECKOUT, "cart_id": "cart-000001"})[0] == 422
    assert shop.call("POST", "/checkout", {"items": CHECKOUT["items"]})[0] == 422


def test_login_checks_the_password_and_locks_out(shop: Shop) -> None:
    """POST /login: 200 with the password, 401 without, 429 after login.max_attempts misses."""
    assert shop.call("POST", "/login", {"user": "ann", "password": DEMO_PASSWORD})[0] == 200
    assert shop.call("POST", "/login", {"user": "ann", "password": "nope"}) == (
        401,
        {"detail": "wrong user or password"},
    )
    shop.config.set(shop.clock.t, {"login.max_attempts": 2}, author="test")
    assert shop.call("POST", "/login", {"user": "ann", "password": "nope"})[0] == 401
    assert shop.call("POST", "/login", {"user": "ann", "password": DEMO_PASSWORD})[0] == 429
    assert shop.call("POST", "/login", {"user": "bob", "password": DEMO_PASSWORD})[0] == 200
    assert shop.call("POST", "/login", {"user": "ann"})[0] == 422


def test_healthz_costs_no_time(shop: Shop) -> None:
    """GET /healthz answers ok without spending simulated time."""
    before = shop.clock.t
    assert shop.call("GET", "/healthz") == (200, {"status": "ok", "service": "shop"})
    assert shop.clock.t == before


def test_same_app_through_httpx() -> None:
    """The shop behaves the same through httpx's ASGI transport as through the driver."""
    clock = SimClock(T0)
    app = create_shop(shop_config(T0), clock, seed=7)

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.local") as c:
            return [
                (await c.get("/products/5")).status_code,
                (await c.get("/products/9001")).status_code,
                (await c.post("/cart", json={"product_id": 3, "qty": 0})).status_code,
                (await c.post("/checkout", json=CHECKOUT)).status_code,
                (await c.post("/login", json={"user": "a", "password": "x"})).status_code,
            ]

    assert run(go()) == [200, 404, 422, 200, 401]


def test_checkout_failure_rate_follows_payments_timeout(shop: Shop) -> None:
    """At 3000 ms under 1% of checkouts fail; at 80 ms over 80% answer 504."""
    healthy = shop.statuses("POST", "/checkout", CHECKOUT, 400)
    assert sum(s != 200 for s in healthy) / 400 < 0.01
    shop.config.set(shop.clock.t, {"payments.timeout_ms": 80}, author="test")
    broken = shop.statuses("POST", "/checkout", CHECKOUT, 400)
    assert broken.count(504) / 400 > 0.8


def test_config_change_and_rollback_apply_to_the_next_request(shop: Shop) -> None:
    """A timeout change bites on the very next checkouts, and a rollback heals them as fast."""
    shop.config.set(shop.clock.t, {"payments.timeout_ms": 1}, author="test")
    assert shop.call("POST", "/checkout", CHECKOUT) == (
        504,
        {"detail": "payment provider timed out after 1 ms"},
    )
    assert shop.statuses("POST", "/checkout", CHECKOUT, 20).count(504) >= 19
    shop.config.rollback(shop.clock.t, 1, author="test")
    assert shop.statuses("POST", "/checkout", CHECKOUT, 20).count(200) >= 19


def test_handlers_spend_their_latency_on_the_clock(shop: Shop) -> None:
    """Sim time advances by each handler's latency: medians near the documented ones."""
    product = statistics.median(shop.latencies("GET", "/products/5", 300))
    body = json.dumps(CHECKOUT).encode()
    checkout = statistics.median(shop.latencies("POST", "/checkout", 300, body))
    assert 0.005 < product < 0.013  # ~8 ms own work, cached after the first read
    assert 0.15 < checkout < 0.25  # ~60 ms own work + ~140 ms payment provider
    shop.config.set(shop.clock.t, {"payments.timeout_ms": 80}, author="test")
    timed_out = shop.latencies("POST", "/checkout", 50, body)
    assert min(timed_out) >= 0.080


def test_config_drives_search_and_catalogue_latency(shop: Shop) -> None:
    """Raising search.max_results slows search; a zero cache TTL slows catalogue reads."""
    search = statistics.median(shop.latencies("GET", "/search?q=red", 200))
    product = statistics.median(shop.latencies("GET", "/products/5", 200))
    shop.config.set(
        shop.clock.t,
        {"search.max_results": 500, "catalog.cache_ttl_s": 0},
        author="test",
    )
    assert statistics.median(shop.latencies("GET", "/search?q=red", 200)) > 2.5 * search
    assert statistics.median(shop.latencies("GET", "/products/5", 200)) > 2.5 * product


def test_the_same_seed_replays_the_same_latencies() -> None:
    """Two shops with one seed spend identical latencies; another seed differs."""

    def trace(seed: int) -> list[float]:
        clock, config = SimClock(T0), shop_config(T0)
        return Shop(create_shop(config, clock, seed=seed), config, clock).latencies(
            "GET", "/products", 30
        )

    assert trace(3) == trace(3)
    assert trace(3) != trace(4)


def test_runs_on_the_wall_clock() -> None:
    """With a WallClock the handlers really sleep, through the same code."""
    app = create_shop(shop_config(), WallClock())
    spec = RequestSpec(0.0, "client-001", "GET", "/products/5")
    status, body = run(driver.send(app, spec))
    assert status == 200
    assert json.loads(body)["id"] == 5


class Recorder:
    """A minimal ASGI app that records what it was given and echoes the body."""

    def __init__(self) -> None:
        self.scope: Scope = {}
        self.messages: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.messages = [await receive(), await receive()]
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"got:", "more_body": True})
        await send({"type": "http.response.body", "body": self.messages[0]["body"]})


def test_send_builds_a_real_http_scope() -> None:
    """driver.send gives the app a server-like scope, the body, then a disconnect."""
    app = Recorder()
    spec = RequestSpec(T0, "client-017", "POST", "/a%20b/c?x=1&y=2", b'{"k":1}')
    assert run(driver.send(app, spec)) == (201, b'got:{"k":1}')
    scope = app.scope
    assert (scope["type"], scope["http_version"], scope["method"]) == ("http", "1.1", "POST")
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        "/a b/c",
        b"/a%20b/c",
        b"x=1&y=2",
    )
    headers = dict(scope["headers"])
    assert headers[b"host"] == b"shop.local"
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == b"7"
    assert headers[b"x-client-id"] == b"client-017"
    assert scope["client"][0] == "10.0.0.17"
    assert (scope["server"], scope["scheme"], scope["root_path"]) == (
        ("shop.local", 80),
        "http",
        "",
    )
    assert [m["type"] for m in app.messages] == ["http.request", "http.disconnect"]


def test_send_answers_500_when_the_app_raises() -> None:
    """An app exception becomes a 500, as a server would answer, unless asked to raise."""

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    spec = RequestSpec(T0, "client-001", "GET", "/")
    assert run(driver.send(broken, spec)) == (500, b"")
    with pytest.raises(RuntimeError, match="boom"):
        run(driver.send(broken, spec, raise_app_exceptions=True))
