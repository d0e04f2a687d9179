"""A quiet day stays quiet: 24 simulated hours of normal traffic open no incident."""

from __future__ import annotations

import pytest

from stanch.core.runbook import Runbook
from stanch.demo.scenario import DEMO_START
from stanch.demo.synthetic import synthetic_events
from stanch.demo.traffic import TrafficProfile
from stanch.engine import Engine, EngineConfig
from stanch.store import Store

pytestmark = pytest.mark.integration

DAY_S = 86_400.0


def test_a_day_of_normal_traffic_opens_zero_incidents(store: Store, demo_runbook: Runbook) -> None:
    """Diurnal swings (±50%), slow noise, client skew and a 0.2% background error rate over a
    whole day: detectors must learn all of it as normal and never page."""
    config = EngineConfig(decision_poll_s=DAY_S, checkpoint_every_s=DAY_S)
    engine = Engine(store, demo_runbook, config=config, now=DEMO_START)
    requests = 0
    alerts_fired = []
    engine.listeners.append(lambda name, details: alerts_fired.append((name, details)))
    for batch in synthetic_events(DEMO_START, DAY_S, TrafficProfile(), seed=11):
        engine.ingest(batch)
        requests += len(batch)
        engine.step(float(int(batch[-1].ts)))
    engine.step(DEMO_START + DAY_S + 2)
    assert requests > 1_500_000  # a real day of traffic went through
    assert engine.points_seen > 86_000 * 7  # every route and the service, every second
    assert engine.incidents == {}, [i.title for i in engine.incidents.values()]
    assert alerts_fired == []
