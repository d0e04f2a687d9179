"""SeriesMonitor with the ensemble detector (the default) scoring request rate and latency."""

from __future__ import annotations

import json
import random

import pytest

from stanch.core.alerts import AlertKind, AlertStatus
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.detectors import EnsembleDetector, RobustBaseline
from stanch.core.errors import ValidationError
from stanch.evaluation.detection_file import parse_detection_config, render_detection_config

from .factories import make_point
from .test_detection import ROUTE, Step, drive, of_kind, steady


def flood(rate: int) -> Step:
    """``rate`` req/s from one client on top of nothing else: a scraper."""

    def step(t: int, rng: random.Random) -> tuple:  # type: ignore[type-arg]
        point = make_point(ROUTE, float(t), rate + rng.randint(-3, 3))
        return point, point

    return step


def test_the_ensemble_is_the_default_for_rate_and_latency() -> None:
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    assert DetectionConfig().detector == "ensemble"
    assert isinstance(monitor.rate, EnsembleDetector)
    assert isinstance(monitor.latency, EnsembleDetector)


def test_robust_remains_selectable() -> None:
    monitor = SeriesMonitor(ROUTE, DetectionConfig(detector="robust"))
    assert isinstance(monitor.rate, RobustBaseline)
    assert isinstance(monitor.latency, RobustBaseline)
    changes = drive(monitor, [(600, steady(20)), (20, flood(200))])
    assert len(of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING)) == 1


def test_unknown_detector_is_refused_in_code_and_yaml() -> None:
    with pytest.raises(ValueError, match="detector must be one of ensemble, robust"):
        DetectionConfig(detector="magic")
    defaults, routes = parse_detection_config(
        'detection:\n  defaults:\n    detector: robust\n  routes:\n    "GET /x":\n'
        "      detector: ensemble\n"
    )
    assert defaults.detector == "robust"
    assert routes["GET /x"].detector == "ensemble"
    assert parse_detection_config(render_detection_config(defaults, routes)) == (defaults, routes)
    with pytest.raises(ValidationError, match=r"<detection>:3: detection\.defaults\.detector"):
        parse_detection_config("detection:\n  defaults:\n    detector: magic\n")


def test_flood_at_one_second_windows_is_detected_within_ten_seconds() -> None:
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(monitor, [(900, steady(20)), (30, flood(200))])
    fired = of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING)
    assert len(fired) == 1
    assert fired[0].started_at == 900.0
    assert fired[0].updated_at - 900.0 <= 10.0
    assert "detector: " in fired[0].explanation


def test_second_flood_shortly_after_the_first_is_still_detected() -> None:
    """The second flood is no news to the ensemble (it just saw one): the overwhelming
    deviation still fires it, within ten seconds."""
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    changes = drive(
        monitor,
        [(900, steady(20)), (60, flood(200)), (120, steady(20)), (30, flood(200))],
    )
    fired = of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING)
    resolved = of_kind(changes, AlertKind.TRAFFIC_SPIKE, AlertStatus.RESOLVED)
    assert len(fired) == 2, [a.started_at for a in fired]
    assert len(resolved) == 1
    second = 900 + 60 + 120
    assert fired[1].started_at == float(second)
    assert fired[1].updated_at - second <= 10.0
    # The flood ending is not a drop, although the daily profile has learned some of it.
    assert of_kind(changes, AlertKind.TRAFFIC_DROP, AlertStatus.FIRING) == []


def test_snapshot_restore_round_trip_and_no_double_fire() -> None:
    """A monitor restored from a JSON snapshot mid-flood scores as the original would and
    does not fire the alert that was already firing again."""
    cfg = DetectionConfig()
    original = SeriesMonitor(ROUTE, cfg)
    first = drive(original, [(900, steady(20)), (10, flood(200))])
    alert = of_kind(first, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING)[0]
    data = json.loads(json.dumps(original.snapshot()))
    assert data["detector"] == "ensemble"
    assert data["news"]["armed"]["spike"] is True
    restored = SeriesMonitor(ROUTE, cfg)
    restored.restore(data)
    restored.rearm(alert)
    assert json.loads(json.dumps(restored.snapshot())) == data
    later_a = drive(original, [(20, flood(200)), (60, steady(20))], seed=9)
    later_b = drive(restored, [(20, flood(200)), (60, steady(20))], seed=9)
    assert of_kind(later_b, AlertKind.TRAFFIC_SPIKE, AlertStatus.FIRING) == []
    assert [(a.kind, a.status, a.updated_at) for a in later_a] == [
        (a.kind, a.status, a.updated_at) for a in later_b
    ]
    assert original.last_scores == restored.last_scores


def test_a_snapshot_from_another_detector_warms_rate_and_latency_up_again() -> None:
    """A checkpoint written by the robust detector (no "detector" key) is not forced into the
    ensemble: rate and latency start cold, the error detectors keep their state."""
    old = SeriesMonitor(ROUTE, DetectionConfig(detector="robust"))
    drive(old, [(300, steady(20))])
    data = old.snapshot()
    del data["detector"]
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    monitor.restore(data)
    fresh = SeriesMonitor(ROUTE, DetectionConfig()).snapshot()["rate"]
    # As JSON: a slot never seen is NaN, and NaN equals itself only when written out.
    assert json.dumps(monitor.snapshot()["rate"]) == json.dumps(fresh)
    assert monitor.snapshot()["errors"] == old.snapshot()["errors"]


def test_point_spreads_are_reported_for_the_dashboard() -> None:
    monitor = SeriesMonitor(ROUTE, DetectionConfig())
    drive(monitor, [(300, steady(50))])
    if getattr(monitor.rate, "spread", None) is None:
        pytest.skip("EnsembleDetector.spread not available yet")
    assert 5.0 < monitor.spreads["rate"] < 12.0  # about sqrt(50), never under Poisson
    assert 0.0 < monitor.spreads["latency_p95"] < 0.1  # log1p seconds
