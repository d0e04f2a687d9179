"""The detector pool: a sweep's monitors share detectors, and the results are unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from stanch.core.alerts import AlertKind
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.events import RequestEvent
from stanch.core.series import SeriesKey
from stanch.core.windows import Point
from stanch.demo.scenario import DEMO_START
from stanch.demo.synthetic import synthetic_events
from stanch.demo.traffic import Flood, TrafficProfile
from stanch.evaluation.backtest import backtest_points
from stanch.evaluation.backtest_results import Candidate
from stanch.evaluation.labels import Label
from stanch.evaluation.replay_batches import EventWindows
from stanch.evaluation.shared_detectors import DetectorPool, SharingError, fingerprint
from stanch.evaluation.sweep import TUNED, make_sweep

S = DEMO_START
FLOOD = Flood("scraper-7", "GET", "/search?q=lamp", S + 600, S + 840, multiplier=20.0)
BURST = (S + 1000.0, S + 1120.0)
LABELS = [
    Label("shop", FLOOD.start, FLOOD.end, route="GET /search"),
    Label("shop", *BURST, route="POST /checkout", kind=AlertKind.ERROR_BURST),
]
KEY = SeriesKey("shop", "GET /search")


def incident_events() -> Iterator[RequestEvent]:
    for batch in synthetic_events(S, 1500.0, TrafficProfile(), seed=5, floods=[FLOOD]):
        for event in batch:
            if event.route == "/checkout" and BURST[0] <= event.ts < BURST[1]:
                event = dataclasses.replace(event, status=503)
            yield event


@pytest.fixture(scope="module")
def points() -> list[Point]:
    return [p for batch in EventWindows().batches(incident_events()) for p in batch]


def test_a_sweep_replays_alike_with_and_without_the_pool(
    points: list[Point], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every candidate of a twitchy sweep (many alerts, every kind of threshold varied, and
    fire_after) gets the very fires and per-series rows separate monitors give it."""
    twitchy = DetectionConfig(
        spike_threshold=2.0,
        drop_threshold=2.0,
        latency_threshold=2.0,
        error_threshold=4.0,
        burn_threshold=2.0,
        fire_after=1,
        warmup_s=60.0,
    )
    grid = {name: (getattr(DetectionConfig(), name),) for name in TUNED.values()}
    sweep = make_sweep(Candidate("twitchy", twitchy), grid=grid, fire_after=(1, 3))
    assert len(sweep.candidates) == 4  # each threshold twitchy or default, by two fire_after
    shared = backtest_points(points, sweep.candidates, LABELS)
    monkeypatch.setattr(DetectorPool, "share", lambda self, monitor: monitor)
    alone = backtest_points(points, sweep.candidates, LABELS)
    assert sum(len(r.fires) for r in shared) > len(sweep.candidates)  # something to compare
    assert {f.kind for r in shared for f in r.fires} >= {
        AlertKind.TRAFFIC_SPIKE,
        AlertKind.ERROR_BURST,
    }
    assert [r.fires for r in shared] == [r.fires for r in alone]
    assert [r.series for r in shared] == [r.series for r in alone]


def _monitor(pool: DetectorPool, **settings: Any) -> SeriesMonitor:
    return pool.share(SeriesMonitor(KEY, DetectionConfig(**settings)))


def test_only_detectors_built_and_fed_alike_are_shared() -> None:
    """Thresholds and fire_after leave the ensembles and burn windows shared; an error
    threshold (which the burst test learns by) or a warm-up (which feeds differently) does not."""
    pool = DetectorPool()
    base = _monitor(pool)
    tuned = _monitor(pool, spike_threshold=3.0, latency_threshold=9.0, fire_after=1)
    errors = _monitor(pool, error_threshold=4.0)
    warmup = _monitor(pool, warmup_s=30.0)
    assert tuned.rate is base.rate
    assert tuned.latency is base.latency
    assert tuned.burn is base.burn
    assert tuned.errors is base.errors
    assert errors.rate is base.rate
    assert errors.errors is not base.errors
    assert warmup.rate is not base.rate
    assert warmup.burn is not base.burn
    assert fingerprint(float("nan")) == fingerprint(float("nan"))


def test_a_shared_detector_takes_each_point_once() -> None:
    """Three monitors on one point: the shared ensemble learns it once (a second update on
    the same point would count it twice)."""
    pool = DetectorPool()
    monitors = [_monitor(pool, fire_after=f) for f in (1, 2, 3)]
    point = Point(
        key=KEY,
        t=S,
        interval=1.0,
        requests=5,
        served=5,
        errors=1,
        enforced=0,
        p50=0.01,
        p95=0.02,
        p99=0.03,
        clients={},
    )
    for n in range(1, 4):
        pool.tick(KEY)
        for monitor in monitors:
            monitor.observe(dataclasses.replace(point, t=S + n), None)
    alone = SeriesMonitor(KEY, DetectionConfig())
    for n in range(1, 4):
        alone.observe(dataclasses.replace(point, t=S + n), None)
    assert fingerprint(monitors[0].rate) == fingerprint(alone.rate)
    assert fingerprint(monitors[0].burn) != fingerprint(SeriesMonitor(KEY, DetectionConfig()).burn)


def test_a_shared_detector_fed_differently_on_one_point_is_an_error() -> None:
    pool = DetectorPool()
    first, second = _monitor(pool), _monitor(pool, fire_after=1)
    pool.tick(KEY)
    first.errors.update(S, 1.0, 10.0)
    with pytest.raises(SharingError, match="fed"):
        second.errors.update(S, 2.0, 10.0)
