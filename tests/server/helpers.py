"""Helpers for the server tests: a settable clock, auth headers, synthetic traffic over HTTP."""

from __future__ import annotations

import random
from typing import Any

import httpx

from stanch.server import ServerContext

T0 = 1_800_000_000.0


class Clock:
    """A settable clock shared by the context, the engine time and the audit trail."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def batch(
    t: float, rps: int = 20, error_ratio: dict[str, float] | None = None, seed: int = 0
) -> dict[str, Any]:
    """One second of traffic on POST /pay and GET /ping, as an events body."""
    rng = random.Random(seed)
    ratios = error_ratio or {}
    events = []
    for route in ("POST /pay", "GET /ping"):
        method, _, path = route.partition(" ")
        for i in range(rps):
            status = 500 if rng.random() < ratios.get(route, 0.0) else 200
            events.append([t + i / rps, method, path, status, 0.02, f"c{rng.randrange(30)}", ""])
    return {"service": "api", "version": "1.0", "events": events}


async def drive(
    client: httpx.AsyncClient,
    ctx: ServerContext,
    clock: Clock,
    token: str,
    seconds: int,
    error_ratio: dict[str, float] | None = None,
) -> None:
    """Post one batch per simulated second over HTTP and step the engine after each."""
    for _ in range(seconds):
        body = batch(clock.t, error_ratio=error_ratio, seed=int(clock.t))
        response = await client.post("/api/v1/events", json=body, headers=bearer(token))
        assert response.status_code == 202, response.text
        clock.t += 1.0
        ctx.step()
