"""SeriesMonitor: synthetic closed points in, alerts out."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable

import pytest

from stanch.core.alert_text import explain, explaining_clients
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.detectors import Score
from stanch.core.series import SeriesKey
from stanch.core.severity import Severity, worst
from stanch.core.windows import ClientStats, Point

from .factories import make_point

ROUTE = SeriesKey("shop", "POST /checkout")
SERVICE = SeriesKey("shop")


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


# A scenario step: (t, rng) -> the route's point and the service's point.
Step = Callable[[int, random.Random], tuple[Point, Point | None]]


def steady(
    rate: float,
    *,
    error_p: float = 0.001,
    p95: float = 0.1,
    share: float = 1.0,
) -> Step:
    """Poisson traffic with rare errors and noisy p95; the route is ``share`` of the service."""

    def step(t: int, rng: random.Random) -> tuple[Point, Point | None]:
        n = poisson(rng, rate)
        point = make_point(
            ROUTE,
            float(t),
            n,
            errors=binomial(rng, n, error_p),
            p95=p95 * math.exp(rng.gauss(0.0, 0.1)),
        )
        service = make_point(SERVICE, float(t), round(n / share)) if share < 1.0 else point
        return point, service

    return step


def drive(
    monitor: SeriesMonitor,
    phases: list[tuple[int, Step]],
    seed: int = 1,
) -> list[Alert]:
    """Feed consecutive phases of (points, step); return every alert change, in order."""
    rng = random.Random(seed)
    t = 0
    changes: list[Alert] = []
    for count, step in phases:
        for _ in range(count):
            point, service = step(t, rng)
            changes += monitor.observe(point, service)
            t += 1
    return changes


def of_kind(alerts: list[Alert], kind: AlertKind, status: AlertStatus) -> list[Alert]:
    return [a for a in alerts if a.kind is kind and a.status is status]


def burst(rate: int = 50, ratio: float = 0.3, share: float = 1.0) -> Step:
    def step(t: int, rng: random.Random) -> tuple[Point, Point | None]:
        point = make_point(ROUTE, float(t), rate, errors=round(rate * ratio), p95=0.1)
        service = make_point(SERVICE, float(t), round(rate / share)) if share < 1.0 else point
        return point, service

    return step


# --------------------------------------------------------------------------- steady state


@pytest.mark.parametrize("rate", [0.5, 5.0, 50.0])
def test_steady_series_never_alerts(rate: float) -> None:
    """Two simulated hours of Poisson traffic with 0.1% errors raise no alert at all."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(7200, steady(rate))], seed=int(rate * 10))
    assert changes == []
    assert monitor.firing == {}
    assert not monitor.last_scores[AlertKind.TRAFFIC_SPIKE].warming


# --------------------------------------------------------------------------- error burst


def test_error_burst_fires_once_with_onset_and_explanation() -> None:
    """A 30% error burst fires one ERROR_BURST alert starting at the first bad window."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(50)), (60, burst())])
    fired = of_kind(changes, AlertKind.ERROR_BURST, AlertStatus.FIRING)
    assert len(fired) == 1
    alert = fired[0]
    assert alert.started_at == 600.0  # start of the first bad window, not when it fired
    assert alert.updated_at == 603.0  # fired on the third bad point (fire_after=3)
    assert alert.route == ROUTE.route
    assert alert.service == "shop"
    assert alert.signal == "errors"
    # Observed is the ratio over the 5-point window: 3 burst points and 2 steady ones.
    assert alert.observed == pytest.approx(0.18, abs=0.03)
    assert alert.expected == pytest.approx(0.002, abs=0.001)
    assert "error ratio" in alert.explanation
    assert "vs baseline 0.20%" in alert.explanation
    assert "15 of 50 requests failed" in alert.explanation
    assert "POST /checkout" in alert.explanation
    # No other signal fired along with it.
    assert {a.kind for a in changes} == {AlertKind.ERROR_BURST}
    # While firing, the stored alert follows the latest point.
    current = monitor.firing[AlertKind.ERROR_BURST]
    assert current.updated_at == 660.0
    assert current.observed == pytest.approx(0.3)
    assert current.started_at == 600.0


def test_error_burst_resolves_after_recovery() -> None:
    """After the burst ends the alert resolves once, after the window and clear_after."""
    cfg = DetectionConfig()
    monitor = SeriesMonitor(ROUTE, cfg)
    changes = drive(monitor, [(600, steady(50)), (60, burst()), (120, steady(50))])
    resolved = of_kind(changes, AlertKind.ERROR_BURST, AlertStatus.RESOLVED)
    assert len(resolved) == 1
    assert len(of_kind(changes, AlertKind.ERROR_BURST, AlertStatus.FIRING)) == 1
    ended = resolved[0].ended_at
    assert ended is not None
    # The 5-point window still holds burst errors for a few points, then 10 good points.
    assert 660 + cfg.clear_after <= ended <= 660 + cfg.error_window_s + cfg.clear_after + 1
    assert resolved[0].started_at == 600.0
    assert monitor.firing == {}


def test_error_burst_during_warm_up_does_not_alert() -> None:
    """Before warm-up only the absolute SLO burn may fire; learned-baseline signals stay quiet."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(30, steady(50)), (30, burst(ratio=0.5))])
    assert {a.kind for a in changes} == {AlertKind.SLO_BURN}
    assert monitor.last_scores[AlertKind.ERROR_BURST].warming
    assert monitor.last_scores[AlertKind.ERROR_BURST].value == 0.0


def hidden(t: int, rng: random.Random) -> tuple[Point, Point | None]:
    """Offered load as usual, all of it answered by Stanch (an open breaker)."""
    point = make_point(ROUTE, float(t), 50, enforced=50)
    return point, point


def test_alert_stays_firing_while_the_route_is_hidden_behind_a_breaker() -> None:
    """Points with nothing served (all enforced) neither clear nor update the error alert."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(50)), (10, burst()), (200, hidden)])
    assert of_kind(changes, AlertKind.ERROR_BURST, AlertStatus.RESOLVED) == []
    assert monitor.firing[AlertKind.ERROR_BURST].updated_at == 610.0
    assert not monitor.last_scores[AlertKind.ERROR_BURST].has_data


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        (1.0, Severity.SEV1),  # 30% of the whole service failing
        (0.1, Severity.SEV2),  # 3% of the service
        (0.01, Severity.SEV3),  # 0.3%
        (0.001, Severity.SEV4),  # 0.03%
    ],
)
def test_error_burst_severity_graded_by_share_of_service(share: float, expected: Severity) -> None:
    """The same 30% burst is graded by how much of the service's traffic the route carries."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(50, share=share)), (10, burst(share=share))])
    fired = of_kind(changes, AlertKind.ERROR_BURST, AlertStatus.FIRING)
    assert len(fired) == 1
    assert fired[0].severity is expected
    assert float(fired[0].labels["share"]) == pytest.approx(share, rel=0.1)


def test_slo_burn_fires_on_a_sustained_burn() -> None:
    """With short SLO windows a sustained 30% error ratio also fires SLO_BURN."""
    cfg = DetectionConfig(burn_long_s=120.0, burn_short_s=10.0)
    monitor = SeriesMonitor(ROUTE, cfg)
    changes = drive(monitor, [(600, steady(50)), (200, burst())])
    fired = of_kind(changes, AlertKind.SLO_BURN, AlertStatus.FIRING)
    assert len(fired) == 1
    assert fired[0].observed > cfg.burn_threshold
    assert "SLO burn rate" in fired[0].explanation
    assert fired[0].severity >= Severity.SEV2


# --------------------------------------------------------------------------- traffic


def clients_step(base: dict[str, float], extra: dict[str, float] | None = None) -> Step:
    """Traffic made of per-client Poisson streams; the route is the whole service."""

    def step(t: int, rng: random.Random) -> tuple[Point, Point | None]:
        counts = {c: poisson(rng, r) for c, r in {**base, **(extra or {})}.items()}
        clients = {c: ClientStats(n, 0, 0) for c, n in counts.items() if n}
        point = make_point(ROUTE, float(t), sum(counts.values()), clients=clients)
        return point, point

    return step


def test_traffic_spike_names_the_client_that_explains_it() -> None:
    """A flood from one client fires TRAFFIC_SPIKE with that client, and only it, in clients."""
    base = {"acme": 2.0, "globex": 2.0, "initech": 2.0}
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(
        monitor, [(600, clients_step(base)), (30, clients_step(base, {"scraper-9": 60.0}))]
    )
    fired = of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING)
    assert len(fired) == 1
    alert = fired[0]
    assert alert.clients == ("scraper-9",)
    assert "scraper-9" in alert.explanation
    assert "request rate" in alert.explanation
    assert alert.expected == pytest.approx(6.0, abs=1.5)
    assert alert.started_at == 600.0
    assert alert.severity is Severity.SEV3  # extra load, not yet harm
    assert of_kind(changes, AlertKind.TRAFFIC_DROP, AlertStatus.FIRING) == []


def test_small_rise_is_not_a_spike() -> None:
    """Under min_spike_rps of extra load a statistically clear rise does not fire."""

    def flat(rate: int) -> Step:
        def step(t: int, rng: random.Random) -> tuple[Point, Point | None]:
            point = make_point(ROUTE, float(t), rate)
            return point, point

        return step

    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, flat(1)), (60, flat(2))])
    assert of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING) == []


def silent(t: int, rng: random.Random) -> tuple[Point, Point | None]:
    point = make_point(ROUTE, float(t), 0)
    return point, point


def test_traffic_drop_fires_on_a_busy_route() -> None:
    """50 req/s falling to nothing fires TRAFFIC_DROP, graded as lost traffic."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(50)), (20, silent)])
    fired = of_kind(changes, AlertKind.TRAFFIC_DROP, AlertStatus.FIRING)
    assert len(fired) == 1
    assert fired[0].started_at == 600.0
    assert fired[0].observed == 0.0
    assert fired[0].severity is Severity.SEV1
    assert fired[0].expected == pytest.approx(50.0, abs=2.0)
    assert re.match(r"request rate 0\.0/s vs baseline (49|50)\.\d/s \(z=-", fired[0].explanation)


@pytest.mark.parametrize(("rate", "lull_s"), [(0.5, 30), (2.0, 6)])
def test_a_lull_on_a_quiet_route_is_ordinary(rate: float, lull_s: int) -> None:
    """A few silent seconds of a quiet route are within its Poisson noise: no alert."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(rate)), (lull_s, silent), (120, steady(rate))])
    assert changes == []


@pytest.mark.parametrize(("rate", "within_s"), [(0.5, 600), (2.0, 60), (10.0, 15)])
def test_a_quiet_route_that_stays_silent_is_a_drop(rate: float, within_s: int) -> None:
    """However quiet the route, silence that lasts is a drop: the missing requests add up
    (sqrt(rate * seconds) standard deviations), so it fires within ``within_s``, once, and
    clears when traffic returns. One point alone never shows it below about 16 req/s."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(rate)), (900, silent), (300, steady(rate))])
    fired = of_kind(changes, AlertKind.TRAFFIC_DROP, AlertStatus.FIRING)
    assert len(fired) == 1
    assert fired[0].started_at >= 600.0
    assert fired[0].updated_at - 600.0 <= within_s
    resolved = of_kind(changes, AlertKind.TRAFFIC_DROP, AlertStatus.RESOLVED)
    assert len(resolved) == 1
    assert 1500.0 <= resolved[0].ended_at <= 1560.0
    assert of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING) == []


# --------------------------------------------------------------------------- latency


def test_latency_spike_fires_and_explains_in_milliseconds() -> None:
    """p95 going from 100 ms to 1 s on a busy route fires LATENCY_SPIKE with both numbers."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(50)), (20, steady(50, p95=1.0))])
    fired = of_kind(changes, AlertKind.LATENCY_SPIKE, AlertStatus.FIRING)
    assert len(fired) == 1
    assert fired[0].started_at == 600.0
    assert fired[0].signal == "latency_p95"
    assert re.match(
        r"p95 latency (9\d\d|10\d\d) ms vs baseline (9\d|10\d) ms, shop POST", fired[0].explanation
    )


def test_modest_latency_rise_is_ignored() -> None:
    """A rise under latency_min_change (+50%) never fires, however steady it is."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(600, steady(50)), (200, steady(50, p95=0.13))])
    assert of_kind(changes, AlertKind.LATENCY_SPIKE, AlertStatus.FIRING) == []


# --------------------------------------------------------------------------- restarts


def test_rearmed_alert_clears_only_on_fresh_evidence() -> None:
    """A rearmed alert survives no-data points and resolves after clear_after good ones."""
    cfg = DetectionConfig(warmup_s=10.0)
    monitor = SeriesMonitor(ROUTE, cfg)
    drive(monitor, [(100, steady(50))])
    first = drive(SeriesMonitor(ROUTE, DetectionConfig()), [(600, steady(50)), (10, burst())])
    alert = first[0]
    monitor.rearm(alert)
    assert monitor.firing[AlertKind.ERROR_BURST] is alert
    assert drive(monitor, [(50, hidden)]) == []
    assert AlertKind.ERROR_BURST in monitor.firing
    later = drive(monitor, [(cfg.clear_after, steady(50))], seed=2)
    resolved = of_kind(later, AlertKind.ERROR_BURST, AlertStatus.RESOLVED)
    assert len(resolved) == 1
    assert resolved[0].fingerprint == alert.fingerprint


# --------------------------------------------------------------------------- helpers


def test_fingerprint_is_stable_per_series_and_kind() -> None:
    """Two monitors of the same series give the same alert the same fingerprint."""
    a = drive(SeriesMonitor(ROUTE, DetectionConfig()), [(600, steady(50)), (10, burst())])
    b = drive(SeriesMonitor(ROUTE, DetectionConfig()), [(700, steady(50)), (10, burst())], 3)
    assert a[0].fingerprint == b[0].fingerprint
    assert a[0].started_at != b[0].started_at


def test_explaining_clients_picks_the_big_ones() -> None:
    """Clients with at least a third of the excess, biggest first, at most 3, never __other__."""
    clients = {
        "a": ClientStats(60, 0, 0),
        "b": ClientStats(40, 0, 0),
        "c": ClientStats(35, 0, 0),
        "d": ClientStats(34, 0, 0),
        "__other__": ClientStats(100, 0, 0),
        "small": ClientStats(5, 0, 0),
    }
    point = make_point(ROUTE, 0.0, 274, clients=clients)
    assert explaining_clients(point, 90.0) == ("a", "b")
    assert explaining_clients(point, 30.0) == ("a", "b")  # top 3 includes __other__, dropped
    assert explaining_clients(point, 0.0) == ()
    assert explaining_clients(make_point(ROUTE, 0.0, 10), 5.0) == ()


def test_explaining_clients_uses_rates_per_second() -> None:
    """Client counts are divided by the interval before comparing with the excess rate."""
    point = make_point(ROUTE, 0.0, 100, interval=10.0, clients={"x": ClientStats(100, 0, 0)})
    assert explaining_clients(point, 9.0) == ("x",)  # 10 req/s >= 9/3
    assert explaining_clients(point, 40.0) == ()  # 10 req/s < 40/3


def test_explain_service_wide_wording() -> None:
    """A service-wide series is named 'service <name>' in explanations."""
    score = Score(0.8, 0.25, 0.001, 9.0)
    point = make_point(SERVICE, 0.0, 100, errors=25)
    text = explain(AlertKind.ERROR_BURST, score, SERVICE, point, ())
    assert text.endswith("service shop")
    assert "25.0% vs baseline 0.10%" in text


def test_worst_severity() -> None:
    """worst() picks the most urgent severity, SEV4 when there is none."""
    assert worst([]) is Severity.SEV4
    assert worst([Severity.SEV3, Severity.SEV1, Severity.SEV2]) is Severity.SEV1


def test_detection_config_points_rounds_and_floors_at_one() -> None:
    """Durations convert to at least one point at the configured interval."""
    cfg = DetectionConfig(interval_s=10.0)
    assert cfg.points(120.0) == 12
    assert cfg.points(1.0) == 1


def test_spike_severity_is_interval_independent() -> None:
    """At 10 s windows a spike adding 45% to normal service load is SEV4, as it is at 1 s."""
    cfg = DetectionConfig(interval_s=10.0)
    monitor = SeriesMonitor(ROUTE, cfg)
    rng = random.Random(3)
    changes: list[Alert] = []
    for i in range(45):
        t = i * 10.0
        route = 500 + rng.randint(-20, 20) if i < 40 else 1500
        service = route + 1700  # the other routes of the service stay at 170 req/s
        changes += monitor.observe(
            make_point(ROUTE, t, route, interval=10.0),
            make_point(SERVICE, t, service, interval=10.0),
        )
    fired = of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING)
    assert len(fired) == 1
    # Normal service load ~2200 per window, excess ~1000: excess_load ~0.45 < 0.5.
    assert fired[0].severity is Severity.SEV4
