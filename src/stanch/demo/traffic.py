"""Seeded, realistic traffic for the demo shop, as a stream of timestamped requests.

Real traffic is not a constant rate, and detectors that only ever saw one would learn nothing
worth showing. So the rate has a daily cycle (peak mid-afternoon UTC, phase taken from the
absolute timestamp, so any start time looks right), slow multiplicative noise on top (a
mean-reverting random walk in log space, a few minutes long), and Poisson arrivals inside each
second. Clients are skewed like real ones: a few heavy clients, a long tail (Zipf weights, with
``client-001`` the heaviest). A small share of requests are the client's fault (unknown product
ids, wrong passwords, invalid bodies), so 4xx is never zero either.

:class:`Flood` adds one client's excess on one route, the raw material of "one client is
hammering search" incidents. Floods draw from their own random streams, so a run with a flood
holds exactly the requests of the same run without it, plus the flood's.

:func:`generate` is a generator holding one second of requests at a time: memory does not grow
with the duration. numpy is not a dependency, so Poisson counts are drawn with ``random.Random``
(multiplication for small means, Hörmann's PTRS rejection sampler for large ones).

>>> specs = list(generate(1_764_000_000.0, 5.0, TrafficProfile(base_rps=4.0), seed=1))
>>> specs == list(generate(1_764_000_000.0, 5.0, TrafficProfile(base_rps=4.0), seed=1))
True
>>> all(a.t <= b.t for a, b in zip(specs, specs[1:]))
True
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

from stanch.demo.shop import CATALOG_SIZE, DEMO_PASSWORD, SEARCH_TERMS

_DAY = 86_400.0
#: How long the rate noise takes to forget itself (the random walk's time constant).
_NOISE_TAU_S = 300.0

PRODUCTS = "GET /products"
PRODUCT = "GET /products/{product_id}"
SEARCH = "GET /search"
CART = "POST /cart"
CHECKOUT = "POST /checkout"
LOGIN = "POST /login"

DEFAULT_ROUTE_MIX: tuple[tuple[str, float], ...] = (
    (PRODUCTS, 0.33),
    (PRODUCT, 0.25),
    (SEARCH, 0.16),
    (CART, 0.12),
    (CHECKOUT, 0.08),
    (LOGIN, 0.06),
)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request to send at simulated time ``t``; ``path`` may carry a query string."""

    t: float
    client: str
    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class TrafficProfile:
    """The shape of normal traffic.

    ``route_mix`` weighs route keys (``"GET /search"``, as in the config schema's ``routes``);
    the weights need not sum to 1. The rate at ``t`` is ``base_rps * (1 + diurnal_amplitude *
    sin(...))``, peaking at ``peak_hour`` UTC, times the slow ``noise``. ``client_skew`` is the
    Zipf exponent of client activity: client ``k`` sends in proportion to ``1 / k**skew``.
    """

    base_rps: float = 25.0
    route_mix: tuple[tuple[str, float], ...] = DEFAULT_ROUTE_MIX
    clients: int = 60
    diurnal_amplitude: float = 0.5
    noise: float = 0.1
    bad_request_share: float = 0.005
    client_skew: float = 1.1
    peak_hour: float = 15.0

    def __post_init__(self) -> None:
        if not self.base_rps >= 0.0:
            raise ValueError(f"base_rps must be >= 0, got {self.base_rps!r}")
        if not 0.0 <= self.diurnal_amplitude <= 1.0:
            raise ValueError(f"diurnal_amplitude must be in [0, 1], got {self.diurnal_amplitude}")
        if not self.noise >= 0.0:
            raise ValueError(f"noise must be >= 0, got {self.noise!r}")
        if not 0.0 <= self.bad_request_share <= 1.0:
            raise ValueError(f"bad_request_share must be in [0, 1], got {self.bad_request_share}")
        if self.clients < 1:
            raise ValueError(f"clients must be >= 1, got {self.clients!r}")
        unknown = {route for route, _ in self.route_mix} - set(_BUILDERS)
        if unknown:
            raise ValueError(f"route_mix names routes the shop lacks: {sorted(unknown)}")
        if not self.route_mix or any(not w >= 0.0 for _, w in self.route_mix):
            raise ValueError("route_mix needs at least one route and no negative weight")
        if sum(w for _, w in self.route_mix) <= 0.0:
            raise ValueError("route_mix weights must not all be zero")

    def share(self, route: str) -> float:
        """The fraction of normal traffic that goes to ``route`` (0 for routes not in the mix)."""
        total = sum(w for _, w in self.route_mix)
        return sum(w for r, w in self.route_mix if r == route) / total

    def client_ids(self) -> list[str]:
        """Client ids, heaviest first: ``client-001`` .. ``client-NNN``."""
        return [f"client-{k:03d}" for k in range(1, self.clients + 1)]


@dataclass(frozen=True, slots=True)
class Flood:
    """``client`` sends ``multiplier`` times the route's normal rate, extra, in ``[start, end)``.

    ``path`` is sent as given (query string included); the route whose normal rate is
    multiplied is the one ``method`` and ``path`` match. ``body`` of None means a typical body
    for that route (a valid cart item, the right password).
    """

    client: str
    method: str
    path: str
    start: float
    end: float
    multiplier: float
    body: bytes | None = None

    @property
    def route(self) -> str | None:
        """The route key this flood hits, or None when no shop route matches."""
        return route_of(self.method, self.path)


def route_of(method: str, path: str) -> str | None:
    """The shop's route key for a request line, or None when no shop route matches."""
    path = path.partition("?")[0].rstrip("/") or "/"
    parts = path.split("/")
    if len(parts) == 3 and parts[1] == "products" and parts[2]:
        template = "/products/{product_id}"
    else:
        template = path
    route = f"{method.upper()} {template}"
    return route if route in _BUILDERS else None


def expected_rate(t: float, profile: TrafficProfile) -> float:
    """Mean requests per second at ``t`` from the daily cycle alone (no noise, no floods)."""
    phase = 2.0 * math.pi * ((t % _DAY) / _DAY - (profile.peak_hour - 6.0) / 24.0)
    return profile.base_rps * (1.0 + profile.diurnal_amplitude * math.sin(phase))


def generate(
    start: float,
    duration: float,
    profile: TrafficProfile,
    *,
    seed: int = 0,
    floods: Sequence[Flood] = (),
) -> Iterator[RequestSpec]:
    """Requests in ``[start, start + duration)``, in non-decreasing time order."""
    for flood in floods:
        if flood.route is None:
            raise ValueError(f"flood {flood.method} {flood.path} matches no shop route")
        if not flood.multiplier >= 0.0:
            raise ValueError(f"flood multiplier must be >= 0, got {flood.multiplier!r}")
    rng = random.Random(seed)
    noise_rng = random.Random(f"{seed}-noise")
    flood_rngs = [random.Random(f"{seed}-flood-{i}") for i in range(len(floods))]
    routes = [route for route, _ in profile.route_mix]
    route_cum = list(accumulate(w for _, w in profile.route_mix))
    clients = profile.client_ids()
    client_cum = list(accumulate(1.0 / k**profile.client_skew for k in range(1, len(clients) + 1)))
    # Log-space Ornstein-Uhlenbeck walk, started from its stationary law; exp(x - s²/2) has
    # mean 1, so noise bends the rate without biasing it.
    decay = math.exp(-1.0 / _NOISE_TAU_S)
    kick = profile.noise * math.sqrt(1.0 - decay * decay)
    log_noise = noise_rng.gauss(0.0, profile.noise)
    end = start + duration
    second = start
    while second < end:
        span = min(1.0, end - second)
        batch: list[RequestSpec] = []
        mean_rate = expected_rate(second + span / 2.0, profile)
        rate = mean_rate * math.exp(log_noise - profile.noise**2 / 2.0)
        for _ in range(_poisson(rng, rate * span)):
            t = second + rng.random() * span
            route = routes[bisect(route_cum, rng.random() * route_cum[-1])]
            client = clients[bisect(client_cum, rng.random() * client_cum[-1])]
            bad = rng.random() < profile.bad_request_share
            method, path, body = _BUILDERS[route](rng, client, bad)
            batch.append(RequestSpec(t, client, method, path, body))
        for flood, frng in zip(floods, flood_rngs, strict=True):
            lo, hi = max(second, flood.start), min(second + span, flood.end)
            if hi <= lo:
                continue
            route = flood.route or ""
            flood_rate = flood.multiplier * mean_rate * profile.share(route)
            for _ in range(_poisson(frng, flood_rate * (hi - lo))):
                t = lo + frng.random() * (hi - lo)
                if flood.body is None:
                    body = _BUILDERS[route](frng, flood.client, False)[2]
                else:
                    body = flood.body
                batch.append(RequestSpec(t, flood.client, flood.method.upper(), flood.path, body))
        batch.sort(key=lambda spec: spec.t)
        yield from batch
        log_noise = decay * log_noise + kick * noise_rng.gauss(0.0, 1.0)
        second += span


def _poisson(rng: random.Random, lam: float) -> int:
    """One Poisson(``lam``) count: exact at every mean, O(1) for large ones."""
    if lam <= 0.0:
        return 0
    if lam < 10.0:
        limit, k, product = math.exp(-lam), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    # Hörmann (1993), "The transformed rejection method for generating Poisson random
    # variables" (PTRS), as numpy implements it; valid for lam >= 10.
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1)
        ):
            return k


# Each builder makes one request for its route: (method, path, body). ``bad`` asks for the
# client's-fault variant, which the shop answers with a 4xx.


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _product_id(rng: random.Random) -> int:
    # Popular products get more views: the first ten draw 40% of them, as well as their share.
    return rng.randint(1, 10) if rng.random() < 0.4 else rng.randint(1, CATALOG_SIZE)


def _products(rng: random.Random, client: str, bad: bool) -> tuple[str, str, bytes]:
    if bad:
        return "GET", "/products?page=0", b""
    page = 1 + int(rng.expovariate(1.5))
    return "GET", ("/products" if page == 1 else f"/products?page={page}"), b""


def _product(rng: random.Random, client: str, bad: bool) -> tuple[str, str, bytes]:
    pid = 9000 + rng.randrange(1000) if bad else _product_id(rng)
    return "GET", f"/products/{pid}", b""


def _search(rng: random.Random, client: str, bad: bool) -> tuple[str, str, bytes]:
    return "GET", ("/search?q=" if bad else f"/search?q={rng.choice(SEARCH_TERMS)}"), b""


def _cart(rng: random.Random, client: str, bad: bool) -> tuple[str, str, bytes]:
    if bad:
        return "POST", "/cart", rng.choice((b'{"product_id":"lots"}', b'{"qty":0}', b"{not json"))
    return "POST", "/cart", _json({"product_id": _product_id(rng), "qty": rng.randint(1, 3)})


def _checkout(rng: random.Random, client: str, bad: bool) -> tuple[str, str, bytes]:
    items = [
        {"product_id": _product_id(rng), "qty": rng.randint(1, 2)} for _ in range(rng.randint(1, 3))
    ]
    body: dict[str, object] = {"items": items, "card_token": f"tok_{rng.getrandbits(32):08x}"}
    if bad:
        del body["card_token"]
    return "POST", "/checkout", _json(body)


def _login(rng: random.Random, client: str, bad: bool) -> tuple[str, str, bytes]:
    user = "user-" + client.rpartition("-")[2]
    password = "hunter2" if bad else DEMO_PASSWORD
    return "POST", "/login", _json({"user": user, "password": password})


_BUILDERS = {
    PRODUCTS: _products,
    PRODUCT: _product,
    SEARCH: _search,
    CART: _cart,
    CHECKOUT: _checkout,
    LOGIN: _login,
}
