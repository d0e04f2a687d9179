"""How many µs StanchMiddleware adds to a request, in-process, against the bare app and slowapi.

Requests are driven straight through ASGI (a scope dict, a ``receive`` that returns an empty body,
a ``send`` that discards) so the numbers are the middleware's and not an HTTP client's. Variants
run interleaved in every round, so drift in the machine hits them all alike; the table reports the
median round. Run from the repository root::

    .venv/bin/python bench/middleware.py [--rounds 7] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from _report import machine_lines, publish
from stanch.buffer import EventBuffer, PolicyHolder
from stanch.core.policy import BreakerRule, ClientRule, Policy, RateRule, RouteRule
from stanch.middleware import StanchMiddleware

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

MEASURED = "GET /items/{item_id}"
BARE = "bare FastAPI app"
BARE_UNIQUE = "bare FastAPI app, new id each request"
CLIENT = b"bench-client"
RESULTS = Path(__file__).parent / "results" / "middleware.md"


def make_app(limit: Callable[[Any], Any] | None = None) -> FastAPI:
    """Six routes; the measured one has a path parameter. ``limit`` decorates the measured one."""
    app = FastAPI()

    async def get_item(item_id: int, request: Request) -> dict[str, int]:
        return {"id": item_id}

    app.get("/items/{item_id}")(limit(get_item) if limit else get_item)

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/products")
    async def products() -> list[int]:
        return [1, 2, 3]

    @app.post("/orders")
    async def create_order() -> dict[str, str]:
        return {"order": "new"}

    @app.get("/users/{user_id}/orders")
    async def user_orders(user_id: str) -> list[str]:
        return []

    @app.delete("/items/{item_id}")
    async def delete_item(item_id: int) -> None:
        return None

    return app


def busy_policy() -> Policy:
    """Something on every route but the measured one runs an armed, CLOSED breaker."""
    return Policy(
        "bench",
        version=1,
        routes={
            MEASURED: RouteRule(
                MEASURED, "inc-1", breaker=BreakerRule("a1", start_open=False, min_calls=10)
            ),
            "GET /users/{user_id}/orders": RouteRule(
                "GET /users/{user_id}/orders", "inc-1", breaker=BreakerRule("a2", start_open=True)
            ),
            "POST /orders": RouteRule("POST /orders", "inc-2", shed_fraction=0.5),
            "GET /products": RouteRule("GET /products", "inc-2", disabled_status=503),
            "DELETE /items/{item_id}": RouteRule(
                "DELETE /items/{item_id}", "inc-3", throttle=RateRule("a3", 10.0, 5)
            ),
        },
        clients={
            "noisy-client": ClientRule("noisy-client", "inc-2", throttle=RateRule("a4", 5.0, 5)),
            "bad-client": ClientRule("bad-client", "inc-3", blocked_status=403),
        },
    )


BUFFERS: list[EventBuffer] = []


def stanch(app: FastAPI, policy: Policy | None) -> StanchMiddleware:
    holder = PolicyHolder("bench", policy, now=time.time())
    # Capacity large enough that no variant ever drops: a drop is cheaper than a push.
    buffer = EventBuffer("bench", capacity=10**8)
    BUFFERS.append(buffer)
    return StanchMiddleware(app, buffer=buffer, policy=holder)


def drain_all() -> None:
    for buffer in BUFFERS:
        buffer.drain()


def slowapi_app() -> App | None:
    try:
        from slowapi import Limiter
        from slowapi.util import get_remote_address
    except ImportError:
        return None
    limiter = Limiter(key_func=get_remote_address)
    app = make_app(limiter.limit("1000000000/second"))
    app.state.limiter = limiter
    return app


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"user-agent", b"bench"), (b"x-client-id", CLIENT)],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    return None


_next_id = itertools.count()


async def run(app: App, n: int, unique_ids: bool) -> float:
    """Seconds for ``n`` requests (a fresh scope each: apps write to it).

    With ``unique_ids`` every request asks for an item id never seen before, so the middleware's
    route cache misses every time: the worst case, a crawl over ids.
    """
    base = scope_for("/items/42")
    paths = [f"/items/{next(_next_id)}" for _ in range(n)] if unique_ids else None
    clock = time.perf_counter
    t0 = clock()
    if paths is None:
        for _ in range(n):
            await app(dict(base), receive, send)
    else:
        for path in paths:
            scope = dict(base)
            scope["path"] = path
            await app(scope, receive, send)
    return clock() - t0


def per_call(fn: Callable[[], object], n: int) -> float:
    clock = time.perf_counter
    t0 = clock()
    for _ in range(n):
        fn()
    return (clock() - t0) / n


def standalone(rounds: int, n: int) -> list[tuple[str, float]]:
    """Per-call cost of the algorithms alone, for context."""
    from stanch.core.breaker import BreakerConfig, CircuitBreaker
    from stanch.core.limiter import Gcra, RateSpec

    calls: list[tuple[str, Callable[[], object]]] = []
    breaker = CircuitBreaker(BreakerConfig(), now=time.time())

    def stanch_breaker() -> None:
        now = time.time()
        breaker.allow(now)
        breaker.record(now, True)

    gcra = Gcra(RateSpec(1e9, 1000))
    calls.append(("stanch CircuitBreaker allow+record (incl. time.time)", stanch_breaker))
    calls.append(("stanch Gcra.allow (incl. time.time)", lambda: gcra.allow(time.time())))
    try:
        import pybreaker

        pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
        calls.append(("pybreaker CircuitBreaker.call", lambda: pyb.call(int)))
    except ImportError:
        pass
    try:
        from limits import RateLimitItemPerSecond
        from limits.storage import MemoryStorage
        from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

        item = RateLimitItemPerSecond(10**9)
        moving = MovingWindowRateLimiter(MemoryStorage())
        fixed = FixedWindowRateLimiter(MemoryStorage())
        calls.append(("limits MovingWindowRateLimiter.hit", lambda: moving.hit(item, "k")))
        calls.append(("limits FixedWindowRateLimiter.hit", lambda: fixed.hit(item, "k")))
    except ImportError:
        pass
    results: dict[str, list[float]] = {name: [] for name, _ in calls}
    for _ in range(rounds):
        for name, fn in calls:
            results[name].append(per_call(fn, n))
    return [(name, statistics.median(ts)) for name, ts in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000, help="per variant and round")
    parser.add_argument("--chunks", type=int, default=10, help="interleaved chunks per round")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    bare = make_app()
    variants: list[tuple[str, App, bool]] = [
        (BARE, bare, False),
        ("Stanch everything on", stanch(bare, busy_policy()), False),
        ("Stanch recording only (empty policy)", stanch(bare, None), False),
    ]
    slow = slowapi_app()
    if slow is not None:
        variants.append(("slowapi Limiter (decorated route)", slow, False))
    variants += [
        (BARE_UNIQUE, bare, True),
        ("Stanch everything on, new id each request", stanch(bare, busy_policy()), True),
    ]

    loop = asyncio.new_event_loop()
    for _, app, unique in variants:  # warm up: route caches, lazy app set-up
        loop.run_until_complete(run(app, 2_000, unique))
    drain_all()
    # Each round runs every variant in short chunks, in rotating order, so a burst of other load
    # on the machine lands on all variants alike; "added" is the median of per-round differences.
    chunk = max(1, args.requests // args.chunks)
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        spent = dict.fromkeys(times, 0.0)
        for c in range(args.chunks):
            for name, app, unique in variants[c % len(variants) :] + variants[: c % len(variants)]:
                spent[name] += loop.run_until_complete(run(app, chunk, unique))
                drain_all()  # what the engine does every second, outside the timing
        for name, total in spent.items():
            times[name].append(total / (chunk * args.chunks) * 1e6)
    loop.close()

    rows = []
    for name, _, unique in variants:
        reference = times[BARE_UNIQUE if unique else BARE]
        us, base = statistics.median(times[name]), statistics.median(reference)
        added = statistics.median(t - b for t, b in zip(times[name], reference, strict=True))
        rows.append((name, us, added, us / base))
    singles = standalone(args.rounds, args.requests)

    command = "$ .venv/bin/python bench/middleware.py " + " ".join(sys.argv[1:])
    lines = [
        "# StanchMiddleware overhead",
        "",
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        *machine_lines(),
        f"- command: `{command.strip()}`",
        f"- method: ASGI called directly (no HTTP client), {args.rounds} rounds x "
        f"{chunk * args.chunks} requests per variant, each round interleaving the variants in "
        f"{args.chunks} chunks; µs/request is the median round, added µs the median of per-round "
        "differences with the bare app. `GET /items/42` with an `x-client-id` header; event "
        "buffers drained between chunks (outside the timing), as the engine would.",
        "",
        "| variant | µs/request | added µs vs bare | ratio vs bare |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {us:.2f} | {add:+.2f} | {r:.3f} |" for n, us, add, r in rows),
        "",
        "Standalone, **per call** (not per request), for context (median of rounds):",
        "",
        "| call | µs/call |",
        "|---|---:|",
        *(f"| {n} | {s * 1e6:.3f} |" for n, s in singles),
        "",
    ]
    publish("\n".join(lines), RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
