"""The charts' memory: bounded rings, 10 s summaries, bands from the detectors, live versions."""

from __future__ import annotations

import math

import httpx

from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.series import SeriesKey
from stanch.core.windows import Point
from stanch.server import ServerContext
from stanch.server.dashboard import dashboard_for
from stanch.server.dashboard.bands import BandState
from stanch.server.dashboard.history import SignalHistory

from .conftest import Clock, csrf_of, drive

KEY = SeriesKey("api", "POST /pay")


def point(t: float, requests: int = 10, errors: int = 0, p95: float = 0.05) -> Point:
    return Point(KEY, t, 1.0, requests, requests, errors, 0, p95 / 2, p95, p95 * 1.5)


def test_rings_are_bounded_and_keep_the_newest() -> None:
    """The fine ring keeps its last N points, the coarse ring its last M buckets, whatever
    was recorded before."""
    history = SignalHistory(fine_s=30, coarse_s=60, coarse_step_s=10)
    for t in range(1000):
        history.record([point(float(t))], {})
    window = history.between(KEY, 0, 1e9)
    fine = [t for t in window.t if t >= 970]
    assert fine == [float(t) for t in range(970, 1000)]
    hour = history.last_hour(KEY)
    assert hour.t == [930.0, 940.0, 950.0, 960.0, 970.0, 980.0]  # the bucket at 990 is filling
    assert history.updates == 1000
    assert history.folds == 99


def test_coarse_buckets_sum_counts_and_average_latency() -> None:
    """A 10 s summary's rate and error ratio are exact over its seconds; its p95 is the mean."""
    history = SignalHistory(coarse_step_s=10)
    for t in range(21):
        history.record([point(float(t), requests=10, errors=5 if t < 10 else 0, p95=0.1)], {})
    hour = history.last_hour(KEY)
    assert hour.t == [0.0, 10.0]
    assert hour.columns["rate"] == [10.0, 10.0]
    assert hour.columns["err"] == [0.5, 0.0]
    assert hour.columns["p95"][0] is not None
    assert math.isclose(hour.columns["p95"][0], 0.1)


def test_latest_sums_the_last_seconds() -> None:
    """The overview's numbers are the last 10 s summed up, not one noisy second."""
    history = SignalHistory()
    for t in range(30):
        history.record([point(float(t), requests=2, errors=2 if t == 29 else 0)], {})
    latest = history.latest(KEY)
    assert latest is not None
    assert latest["rate"] == 2.0
    assert latest["err"] == 0.1  # 2 errors among 20 requests
    assert history.latest(SeriesKey("api", "GET /nothing")) is None


def test_between_rebuckets_long_ranges() -> None:
    """A coarser step sums the points into buckets of that size."""
    history = SignalHistory()
    for t in range(60):
        history.record([point(float(t), requests=4)], {})
    window = history.between(KEY, 0, 59, step=5)
    assert window.step == 5
    assert window.t == [float(t) for t in range(0, 60, 5)]
    assert set(window.columns["rate"]) == {4.0}


def test_series_beyond_the_cap_are_dropped_and_counted() -> None:
    """More series than ``max_series`` cannot grow the memory: the extra ones are counted."""
    history = SignalHistory(max_series=2)
    points = [point(0.0)] + [
        Point(SeriesKey("api", f"GET /r{i}"), 0.0, 1.0, 1, 1, 0, 0, 0.1, 0.1, 0.1) for i in range(3)
    ]
    history.record(points, {})
    assert len(history.series) == 2
    assert history.dropped == 2


def test_bands_follow_the_detector() -> None:
    """After warm-up, each signal has an expectation and a quiet band around what the monitor
    learned: the rate band holds the steady rate and excludes a tenfold spike; the error band
    starts at the detector's floor."""
    config = DetectionConfig(warmup_s=20.0)
    monitor = SeriesMonitor(KEY, config)
    state = BandState()
    bands = None
    for t in range(60):
        monitor.observe(point(float(t), requests=20 + t % 3), None)
        bands = state.update(monitor)
    assert bands is not None
    assert 19 < bands.rate_exp < 23
    assert bands.rate_lo < 20
    assert bands.rate_hi > 23
    assert bands.rate_hi < 200
    assert bands.err_hi == config.error_min_ratio
    assert bands.p95_exp > 0
    assert bands.p95_hi >= bands.p95_exp * (1 + config.latency_min_change)
    cold = BandState().update(SeriesMonitor(KEY, config))
    assert all(math.isnan(v) for v in cold.values())


async def test_the_live_version_moves_with_steps_and_decisions(
    responder: httpx.AsyncClient, incident_ctx: ServerContext, clock: Clock
) -> None:
    """/live changes when a step records points and when someone decides something, and
    stays put otherwise: open pages redraw exactly when there is something new."""
    first = (await responder.get("/live")).json()["version"]
    assert (await responder.get("/live")).json()["version"] == first
    drive(incident_ctx, clock, 1, error_ratio=0.6)
    stepped = (await responder.get("/live")).json()["version"]
    assert stepped != first
    page = (await responder.get("/")).text
    await responder.post("/actions/ACT-0001/approve", data={"csrf": csrf_of(page)})
    assert (await responder.get("/live")).json()["version"] != stepped


async def test_incident_charts_carry_bands_markers_and_spans(
    responder: httpx.AsyncClient, incident_ctx: ServerContext, clock: Clock
) -> None:
    """The incident's chart data: the affected route's error ratio and rate with expectation
    and band, a marker where the alert started, and a span from when the breaker applied."""
    page = (await responder.get("/")).text
    await responder.post("/actions/ACT-0001/approve", data={"csrf": csrf_of(page)})
    drive(incident_ctx, clock, 5, error_ratio=0.6)
    data = (await responder.get("/incidents/INC-0001/charts.json")).json()
    assert [(c["route"], c["signal"]) for c in data["charts"]] == [
        ("POST /pay", "err"),
        ("POST /pay", "rate"),
    ]
    errors = data["charts"][0]
    assert data["step"] == 5.0  # 10 min before the onset to now, in under 200 points
    assert len(errors["t"]) == len(errors["value"]) == len(errors["expected"]) > 10
    assert max(v for v in errors["value"] if v is not None) > 0.3
    assert any(v is not None for v in errors["hi"])
    labels = [m["label"] for m in data["markers"]]
    assert "error_burst on POST /pay" in labels
    (span,) = data["spans"]
    assert span["label"] == "circuit_break on POST /pay"
    assert span["phase"] == "isolate"
    assert span["to"] is None
    overview = (await responder.get("/overview.json")).json()
    assert len(overview["series"]) == 4  # the service and its three routes


def test_a_context_has_one_dashboard(incident_ctx: ServerContext) -> None:
    """Mounting twice (two apps on one context) shares one recorder and one session store."""
    assert dashboard_for(incident_ctx) is dashboard_for(incident_ctx)
    assert incident_ctx.engine.on_points.count(incident_ctx.engine.on_points[0]) == 1


async def test_sparkline_data_is_built_once_per_bucket(
    responder: httpx.AsyncClient, incident_ctx: ServerContext, clock: Clock
) -> None:
    """The overview's sparkline answer is reused until a 10 s bucket completes."""
    history = dashboard_for(incident_ctx).history
    first = (await responder.get("/overview.json")).content
    assert history.folds == dashboard_for(incident_ctx).cache["sparklines"][0]
    assert (await responder.get("/overview.json")).content == first
    folds = history.folds
    while history.folds == folds:
        drive(incident_ctx, clock, 1)
    assert (await responder.get("/overview.json")).content != first
