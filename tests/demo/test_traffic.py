"""The seeded traffic generator, and driving it through the shop on a simulated clock."""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
from collections import Counter
from collections.abc import Iterator
from itertools import islice

import pytest

from stanch.clock import SimClock
from stanch.demo import driver
from stanch.demo.shop import create_shop, shop_config
from stanch.demo.traffic import (
    SEARCH,
    Flood,
    RequestSpec,
    TrafficProfile,
    _poisson,
    expected_rate,
    generate,
)

DAY0 = 1_763_942_400.0  # a midnight UTC
T0 = DAY0 + 16 * 3600.0
QUIET = TrafficProfile(noise=0.0)


def route_of(spec: RequestSpec) -> str:
    path = spec.path.partition("?")[0]
    if path.startswith("/products/"):
        path = "/products/{product_id}"
    return f"{spec.method} {path}"


def test_same_seed_same_traffic() -> None:
    """A seed fixes the traffic exactly; another seed gives other traffic."""
    a = list(generate(T0, 60.0, TrafficProfile(), seed=5))
    assert a == list(generate(T0, 60.0, TrafficProfile(), seed=5))
    assert a != list(generate(T0, 60.0, TrafficProfile(), seed=6))


def test_requests_are_time_ordered_within_the_window() -> None:
    """Times never decrease and stay in [start, start + duration), partial seconds included."""
    ts = [s.t for s in generate(T0, 120.5, TrafficProfile(), seed=1)]
    assert ts == sorted(ts)
    assert ts[0] >= T0
    assert ts[-1] < T0 + 120.5


def test_generate_is_lazy() -> None:
    """generate is a generator: a year of traffic yields its first requests at once."""
    specs = generate(T0, 365 * 86_400.0, TrafficProfile(), seed=1)
    assert isinstance(specs, Iterator)
    assert len(list(islice(specs, 100))) == 100


def test_mean_rate_matches_expected_rate() -> None:
    """Without noise the count is within 2% of the integral of expected_rate; with it, 15%."""
    duration = 3600.0
    expected = sum(expected_rate(T0 + k + 0.5, QUIET) for k in range(int(duration)))
    quiet = sum(1 for _ in generate(T0, duration, QUIET, seed=2))
    noisy = sum(1 for _ in generate(T0, duration, TrafficProfile(noise=0.1), seed=2))
    assert abs(quiet / expected - 1.0) < 0.02
    assert abs(noisy / expected - 1.0) < 0.15


def test_diurnal_cycle_peaks_mid_afternoon() -> None:
    """The rate peaks at 15:00 UTC and bottoms at 03:00, by 1 ± amplitude; counts follow."""
    peak, trough = DAY0 + 15 * 3600.0, DAY0 + 3 * 3600.0
    assert expected_rate(peak, QUIET) == pytest.approx(25.0 * 1.5)
    assert expected_rate(trough, QUIET) == pytest.approx(25.0 * 0.5)
    busy = sum(1 for _ in generate(peak - 300.0, 600.0, QUIET, seed=3))
    calm = sum(1 for _ in generate(trough - 300.0, 600.0, QUIET, seed=3))
    assert 2.6 < busy / calm < 3.4


def test_route_mix_is_followed() -> None:
    """Each route gets its share of the profile's route_mix, within two points."""
    specs = list(generate(T0, 1200.0, QUIET, seed=4))
    counts = Counter(route_of(s) for s in specs)
    for route, _ in QUIET.route_mix:
        assert counts[route] / len(specs) == pytest.approx(QUIET.share(route), abs=0.02)


def test_clients_are_skewed() -> None:
    """A few heavy clients and a long tail: client-001 leads with a Zipf-sized share."""
    specs = list(generate(T0, 1200.0, QUIET, seed=4))
    counts = Counter(s.client for s in specs)
    (top, top_n), *_ = counts.most_common()
    harmonic = sum(k**-QUIET.client_skew for k in range(1, QUIET.clients + 1))
    assert top == "client-001"
    assert top_n / len(specs) == pytest.approx(1.0 / harmonic, rel=0.1)
    assert sum(n for _, n in counts.most_common(5)) / len(specs) > 0.5
    assert len(counts) == QUIET.clients


def test_bad_request_share_becomes_4xx() -> None:
    """bad_request_share of the requests are the client's fault, and the shop says so."""
    profile = TrafficProfile(noise=0.0, bad_request_share=0.1)
    clock = SimClock(T0)
    app = create_shop(shop_config(T0), clock)
    stats = asyncio.run(driver.run(app, generate(T0, 300.0, profile, seed=8), clock))
    assert stats.by_class["4xx"] / stats.requests == pytest.approx(0.1, abs=0.02)
    assert stats.by_class["2xx"] / stats.requests > 0.85


def test_flood_adds_one_clients_excess_on_one_route() -> None:
    """A 20x flood adds ~20x the route's rate, from that client, on that path, in [start, end)."""
    start, end = T0 + 60.0, T0 + 120.0
    flood = Flood("client-042", "GET", "/search?q=shoes", start, end, 20.0)
    base = list(generate(T0, 180.0, QUIET, seed=9))
    flooded = list(generate(T0, 180.0, QUIET, seed=9, floods=[flood]))
    extra = Counter(flooded) - Counter(base)
    assert Counter(flooded) - extra == Counter(base)  # the normal traffic is untouched
    assert {(s.client, s.method, s.path) for s in extra} == {("client-042", "GET", flood.path)}
    assert all(start <= s.t < end for s in extra)
    expected = (
        20.0 * QUIET.share(SEARCH) * sum(expected_rate(start + k + 0.5, QUIET) for k in range(60))
    )
    assert sum(extra.values()) == pytest.approx(expected, rel=0.05)


def test_flood_on_a_path_the_shop_lacks_is_refused() -> None:
    """A flood whose method and path match no shop route is a ValueError, not a silent no-op."""
    flood = Flood("client-001", "GET", "/admin", T0, T0 + 10.0, 5.0)
    with pytest.raises(ValueError, match="matches no shop route"):
        next(generate(T0, 10.0, QUIET, floods=[flood]))


@pytest.mark.parametrize("lam", [0.5, 3.0, 25.0, 400.0])
def test_poisson_counts_have_the_right_mean_and_variance(lam: float) -> None:
    """The Poisson sampler, both branches, has mean and variance lam."""
    rng = random.Random(11)
    draws = [_poisson(rng, lam) for _ in range(20_000)]
    assert statistics.fmean(draws) == pytest.approx(lam, rel=0.03)
    assert statistics.pvariance(draws) == pytest.approx(lam, rel=0.06)
    assert min(draws) >= 0


def test_run_ticks_once_per_simulated_second_crossed() -> None:
    """run calls on_tick at each boundary crossed, clock set to it, then up to `until`."""
    times = [100.5, 101.2, 101.7, 104.1]
    specs = [RequestSpec(t, "client-001", "GET", "/healthz") for t in times]
    clock = SimClock(0.0)
    app = create_shop(shop_config(), clock)
    seen: list[tuple[float, float]] = []

    async def on_tick(t: float) -> None:
        seen.append((t, clock.t))

    stats = asyncio.run(driver.run(app, specs, clock, on_tick, until=106.0))
    assert [t for t, _ in seen] == [101.0, 102.0, 103.0, 104.0, 105.0, 106.0]
    assert all(t == at for t, at in seen)
    assert (stats.requests, stats.ticks, stats.by_class["2xx"]) == (4, 6, 4)


def test_run_counts_statuses_and_accepts_plain_callbacks() -> None:
    """DriveStats counts by status class; a synchronous on_tick works too."""
    clock = SimClock(T0)
    app = create_shop(shop_config(T0), clock)
    specs = [
        RequestSpec(T0 + 0.1, "c", "GET", "/products/1"),
        RequestSpec(T0 + 0.2, "c", "GET", "/products/9999"),
        RequestSpec(T0 + 2.5, "c", "POST", "/cart", json.dumps({"qty": 0}).encode()),
    ]
    ticks: list[float] = []
    stats = asyncio.run(driver.run(app, specs, clock, ticks.append, tick=0.5))
    assert stats.by_class == {"2xx": 1, "3xx": 0, "4xx": 2, "5xx": 0}
    assert ticks == [T0 + 0.5 * k for k in range(1, 6)]
    assert math.isclose(stats.error_ratio, 0.0)
