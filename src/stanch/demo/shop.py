"""A small shop API for the demo: real routes, validation and errors, with simulated latency.

Handlers spend their latency with ``await clock.sleep(...)``: on a :class:`~stanch.clock.SimClock`
that only moves simulated time, so the middleware measures realistic latencies while thousands
of requests run in a second; on a :class:`~stanch.clock.WallClock` the same app really waits.
Latencies are lognormal (a median and a tail) and drawn from a ``random.Random(seed)`` owned
by the app, so a simulated run replays identically.

Configuration is read from the :class:`ConfigStore` at request time, never cached, so a bad
change, and the rollback that undoes it, take effect on the very next request: that is what
the demo's incidents are made of. The knobs that matter:

- ``payments.timeout_ms``: checkout waits this long for the payment provider (median ~140 ms).
  At the default 3000 ms no checkout times out; at 80 ms nearly all of them answer 504.
- ``search.max_results``: the search backend fetches this many candidates, so search latency
  grows with it.
- ``catalog.cache_ttl_s``: catalogue reads are cheap while cached; 0 sends every one to the
  database.
- ``login.max_attempts``: consecutive wrong passwords before a user is locked out (429).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field, model_validator

from stanch.clock import Clock
from stanch.core.config import ConfigKeySpec, ConfigStore

SHOP_SERVICE = "shop"

SHOP_CONFIG_SCHEMA: list[ConfigKeySpec] = [
    ConfigKeySpec(
        key="payments.timeout_ms",
        type="int",
        default=3000,
        minimum=1,
        maximum=60000,
        routes=("POST /checkout",),
        description="How long checkout waits for the payment provider before answering 504.",
    ),
    ConfigKeySpec(
        key="search.max_results",
        type="int",
        default=20,
        minimum=1,
        maximum=500,
        routes=("GET /search",),
        description="Results per search; the backend fetches this many, so latency grows too.",
    ),
    ConfigKeySpec(
        key="catalog.cache_ttl_s",
        type="int",
        default=60,
        minimum=0,
        maximum=3600,
        routes=("GET /products", "GET /products/{product_id}"),
        description="Seconds a catalogue read stays cached; 0 sends every read to the database.",
    ),
    ConfigKeySpec(
        key="login.max_attempts",
        type="int",
        default=5,
        minimum=1,
        maximum=100,
        routes=("POST /login",),
        description="Consecutive wrong passwords before a user is locked out for a while.",
    ),
]

#: Product ids are 1..CATALOG_SIZE whatever the seed, so traffic can aim at them (or miss).
CATALOG_SIZE = 50
#: Every demo user's password; anything else is a wrong password (401).
DEMO_PASSWORD = "correct-horse"

ADJECTIVES = ("red", "blue", "green", "vintage", "compact", "wireless", "organic", "steel", "smart")
NOUNS = ("shoes", "lamp", "kettle", "backpack", "headphones", "mug", "jacket", "chair", "watch")
#: What shoppers search for: every word that occurs in some product name.
SEARCH_TERMS = ADJECTIVES + NOUNS

#: Share of requests that fail with a 500 whatever the configuration: real backends are never
#: perfectly clean, and detectors must learn that baseline instead of alerting on every error.
BASELINE_ERROR_RATE = 0.002

# Medians (seconds) and lognormal sigmas of each handler's own work.
_SIGMA = 0.45
_MEDIAN_PRODUCTS = 0.015
_MEDIAN_PRODUCT = 0.008
_MEDIAN_SEARCH_BASE = 0.036
_MEDIAN_SEARCH_PER_RESULT = 0.0002  # 40 ms at the default 20 results, ~136 ms at 500
_MEDIAN_CART = 0.012
_MEDIAN_LOGIN = 0.025
_MEDIAN_CHECKOUT = 0.060
_MEDIAN_DB_MISS = 0.025  # extra cost of a catalogue read the cache could not answer
_MEDIAN_PAYMENT = 0.140
_SIGMA_PAYMENT = 0.35

_LOCKOUT_S = 300.0
# In-memory state is capped: the live app serves strangers, and the demo must not grow forever.
_MAX_ENTRIES = 10_000


class CartItem(BaseModel):
    product_id: int
    qty: int = Field(default=1, ge=1, le=99)


class CartAdd(CartItem):
    """One product to put in a cart; without ``cart_id`` a new cart is opened."""

    cart_id: str | None = None


class CheckoutRequest(BaseModel):
    """Pay for a cart, by id or by listing its items: exactly one of the two."""

    cart_id: str | None = None
    items: list[CartItem] | None = Field(default=None, min_length=1)
    card_token: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> CheckoutRequest:
        if (self.cart_id is None) == (self.items is None):
            raise ValueError("give exactly one of cart_id or items")
        return self


class LoginRequest(BaseModel):
    user: str = Field(min_length=1)
    password: str


def shop_config(now: float = 0.0) -> ConfigStore:
    """A fresh configuration store for the shop, at its defaults."""
    return ConfigStore(SHOP_SERVICE, SHOP_CONFIG_SCHEMA, now=now)


def build_catalog(seed: int = 0) -> dict[int, dict[str, Any]]:
    """``CATALOG_SIZE`` products with ids 1..N, names and prices chosen by ``seed``."""
    rng = random.Random(f"catalog-{seed}")
    names = [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]
    chosen = rng.sample(names, CATALOG_SIZE)
    return {
        i: {
            "id": i,
            "name": name,
            "price_cents": rng.randrange(299, 19_999, 100),
            "stock": rng.randint(0, 250),
        }
        for i, name in enumerate(chosen, start=1)
    }


def _put(store: OrderedDict[str, Any], key: str, value: Any) -> None:
    store[key] = value
    store.move_to_end(key)
    if len(store) > _MAX_ENTRIES:
        store.popitem(last=False)


def create_shop(config: ConfigStore, clock: Clock, *, seed: int = 0) -> FastAPI:
    """The shop app, reading ``config`` per request and spending latency on ``clock``."""
    rng = random.Random(seed)
    catalog = build_catalog(seed)
    catalog_list = list(catalog.values())
    cache: dict[str, float] = {}  # key -> when it was last read from the "database"
    carts: OrderedDict[str, list[CartItem]] = OrderedDict()
    logins: OrderedDict[str, tuple[int, float]] = OrderedDict()  # user -> (failures, locked until)
    counters = {"cart": 0, "order": 0}

    async def work(median_s: float, sigma: float = _SIGMA) -> None:
        """Spend one handler's own latency; a small share of requests then fail anyway."""
        await clock.sleep(rng.lognormvariate(0.0, sigma) * median_s)
        if rng.random() < BASELINE_ERROR_RATE:
            raise HTTPException(500, "transient backend error")

    async def catalog_read(key: str) -> None:
        now = clock.now()
        refreshed = cache.get(key)
        if refreshed is None or now - refreshed >= config.get("catalog.cache_ttl_s"):
            await clock.sleep(rng.lognormvariate(0.0, _SIGMA) * _MEDIAN_DB_MISS)
            if len(cache) >= _MAX_ENTRIES:
                cache.clear()
            cache[key] = now

    def product(product_id: int) -> dict[str, Any]:
        found = catalog.get(product_id)
        if found is None:
            raise HTTPException(404, f"product {product_id} not found")
        return found

    def total_cents(items: list[CartItem]) -> int:
        return sum(product(item.product_id)["price_cents"] * item.qty for item in items)

    app = FastAPI(title="Stanch demo shop", version="1.0")

    @app.get("/products")
    async def list_products(
        page: int = Query(1, ge=1), per_page: int = Query(20, ge=1, le=100)
    ) -> dict[str, Any]:
        await work(_MEDIAN_PRODUCTS)
        await catalog_read(f"list:{page}:{per_page}")
        start = (page - 1) * per_page
        return {
            "items": catalog_list[start : start + per_page],
            "page": page,
            "per_page": per_page,
            "total": len(catalog_list),
        }

    @app.get("/products/{product_id}")
    async def get_product(product_id: int) -> dict[str, Any]:
        await work(_MEDIAN_PRODUCT)
        found = product(product_id)
        await catalog_read(f"product:{product_id}")
        return found

    @app.get("/search")
    async def search(q: str = Query(min_length=1, max_length=100)) -> dict[str, Any]:
        limit: int = config.get("search.max_results")
        await work(_MEDIAN_SEARCH_BASE + _MEDIAN_SEARCH_PER_RESULT * limit)
        needle = q.lower()
        matches = [p for p in catalog_list if needle in p["name"]]
        return {"query": q, "count": len(matches), "results": matches[:limit]}

    @app.post("/cart")
    async def add_to_cart(body: CartAdd) -> dict[str, Any]:
        await work(_MEDIAN_CART)
        product(body.product_id)
        if body.cart_id is None:
            counters["cart"] += 1
            cart_id, items = f"cart-{counters['cart']:06d}", []
        elif body.cart_id in carts:
            cart_id, items = body.cart_id, carts[body.cart_id]
        else:
            raise HTTPException(404, f"cart {body.cart_id} not found")
        items.append(CartItem(product_id=body.product_id, qty=body.qty))
        _put(carts, cart_id, items)
        return {
            "cart_id": cart_id,
            "items": [item.model_dump() for item in items],
            "total_cents": total_cents(items),
        }

    @app.post("/checkout")
    async def checkout(body: CheckoutRequest) -> dict[str, Any]:
        await work(_MEDIAN_CHECKOUT)
        items = body.items if body.items is not None else carts.get(body.cart_id or "")
        if items is None:
            raise HTTPException(404, f"cart {body.cart_id} not found")
        amount = total_cents(items)
        # Read at request time: a change (or its rollback) applies to the next checkout.
        timeout_ms: int = config.get("payments.timeout_ms")
        provider_s = rng.lognormvariate(0.0, _SIGMA_PAYMENT) * _MEDIAN_PAYMENT
        if provider_s * 1000.0 > timeout_ms:
            await clock.sleep(timeout_ms / 1000.0)
            raise HTTPException(504, f"payment provider timed out after {timeout_ms} ms")
        await clock.sleep(provider_s)
        if body.cart_id is not None:
            carts.pop(body.cart_id, None)
        counters["order"] += 1
        return {"order_id": f"ord-{counters['order']:06d}", "total_cents": amount, "status": "paid"}

    @app.post("/login")
    async def login(body: LoginRequest) -> dict[str, Any]:
        await work(_MEDIAN_LOGIN)
        now = clock.now()
        failures, locked_until = logins.get(body.user, (0, 0.0))
        if now < locked_until:
            raise HTTPException(429, f"too many failed attempts for {body.user}; try later")
        if body.password != DEMO_PASSWORD:
            failures += 1
            limit: int = config.get("login.max_attempts")
            locked = now + _LOCKOUT_S if failures >= limit else 0.0
            _put(logins, body.user, (0 if locked else failures, locked))
            raise HTTPException(401, "wrong user or password")
        logins.pop(body.user, None)
        return {"user": body.user, "token": f"session-{rng.getrandbits(64):016x}"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": SHOP_SERVICE}

    return app
