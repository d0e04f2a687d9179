"""Request outcomes without the app: the demo's traffic turned straight into events.

Days of traffic through the real ASGI app would take hours; detection only needs what the
middleware would have recorded. This keeps the generator's arrivals (daily cycle, noise, client
skew, floods) and draws each outcome from the shop's normal behaviour: a small failure rate and
lognormal latencies per route. Used by the false-alarm test, backtests and benchmarks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from stanch.core.events import RequestEvent
from stanch.demo.traffic import Flood, TrafficProfile, generate, route_of

_MEDIAN_LATENCY = {
    "GET /products": 0.015,
    "GET /products/{product_id}": 0.008,
    "GET /search": 0.040,
    "POST /cart": 0.012,
    "POST /checkout": 0.200,
    "POST /login": 0.025,
}


def synthetic_events(
    start: float,
    duration: float,
    profile: TrafficProfile,
    *,
    service: str = "shop",
    seed: int = 0,
    error_rate: float = 0.002,
    floods: Sequence[Flood] = (),
) -> Iterator[list[RequestEvent]]:
    """Events grouped by whole second (one list per second that saw requests), in time order."""
    rng = random.Random(seed ^ 0x5EED)
    batch: list[RequestEvent] = []
    second = math.floor(start)
    for spec in generate(start, duration, profile, seed=seed, floods=floods):
        if spec.t >= second + 1:
            if batch:
                yield batch
            batch = []
            second = math.floor(spec.t)
        route = route_of(spec.method, spec.path) or f"{spec.method} __unmatched__"
        method, _, template = route.partition(" ")
        median = _MEDIAN_LATENCY.get(route, 0.02)
        latency = median * math.exp(rng.gauss(0.0, 0.45))
        status = 500 if rng.random() < error_rate else 200
        batch.append(RequestEvent(spec.t, service, method, template, status, latency, spec.client))
    if batch:
        yield batch
