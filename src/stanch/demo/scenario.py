"""The demo scenario: half an hour of a shop's life with two incidents, on a simulated clock.

(a) A configuration change sets the payment timeout far below the payment provider's latency:
checkout answers 5xx. (b) Later one client floods search at 20x its normal rate. Stanch detects
both, opens incidents with a severity, isolates checkout with a breaker (automatic) and throttles
the flooding client alone (after an operator approves), ranks the config change first and rolls
it back, verifies recovery, lifts its mitigations in stages and writes the post-mortems.

Everything runs in-process: real requests through the real ASGI app and middleware, with the
engine stepped once per simulated second.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stanch.clock import SimClock
from stanch.core.actions import Action
from stanch.core.incidents import Incident
from stanch.core.runbook import Runbook, load_runbook
from stanch.demo.driver import DriveStats, run
from stanch.demo.shop import SHOP_SERVICE, create_shop, shop_config
from stanch.demo.traffic import Flood, TrafficProfile, generate
from stanch.engine import Engine
from stanch.middleware import StanchMiddleware
from stanch.store import Store

DEFAULT_RUNBOOK = Path(__file__).with_name("runbook.yaml")
DEMO_START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Scenario:
    """When things happen, in seconds after the start."""

    start: float = DEMO_START
    duration_s: float = 1800.0
    deploy_at_s: float = 200.0
    bad_config_at_s: float = 480.0
    bad_timeout_ms: int = 80
    flood_start_s: float = 1080.0
    flood_end_s: float = 1320.0
    flood_client: str = "scraper-7"
    flood_multiplier: float = 20.0
    unrelated_change_at_s: float = 900.0
    operator_delay_s: float = 20.0
    operator: str = "operator:alice"
    seed: int = 7
    base_rps: float = 25.0

    @property
    def floods(self) -> tuple[Flood, ...]:
        return (
            Flood(
                client=self.flood_client,
                method="GET",
                path="/search?q=lamp",
                start=self.start + self.flood_start_s,
                end=self.start + self.flood_end_s,
                multiplier=self.flood_multiplier,
            ),
        )


@dataclass(slots=True)
class DemoReport:
    scenario: Scenario
    incidents: list[Incident]
    actions: dict[str, list[Action]]
    traffic: DriveStats
    wall_seconds: float
    postmortems: dict[str, Path] = field(default_factory=dict)
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def onsets(self) -> dict[str, float]:
        s = self.scenario
        return {
            "checkout": s.start + s.bad_config_at_s,
            "flood": s.start + s.flood_start_s,
        }


EventSink = Callable[[float, str, dict[str, Any]], None]


class DemoOperator:
    """A responder who approves what the runbook asks them to, after reading it for a while."""

    def __init__(self, engine: Engine, clock: SimClock, scenario: Scenario) -> None:
        self.engine = engine
        self.clock = clock
        self.delay = scenario.operator_delay_s
        self.name = scenario.operator
        self.due: list[tuple[float, str]] = []

    def on_event(self, name: str, details: dict[str, Any]) -> None:
        if name == "approval_needed":
            self.due.append((self.clock.now() + self.delay, str(details["action"])))

    def act(self, now: float) -> None:
        ready = [item for item in self.due if item[0] <= now]
        self.due = [item for item in self.due if item[0] > now]
        for _, action_id in ready:
            if self.engine.actions[action_id].state == "pending":
                self.engine.decide(
                    action_id,
                    True,
                    actor=self.name,
                    now=now,
                    reason="checked the dashboard: one client, normal users unaffected",
                )


async def run_simulation(
    scenario: Scenario,
    *,
    db_url: str,
    out_dir: Path,
    runbook: Runbook | None = None,
    on_event: EventSink | None = None,
) -> DemoReport:
    """Run the whole scenario on a simulated clock and write post-mortems to ``out_dir``."""
    wall_start = time.perf_counter()
    clock = SimClock(scenario.start)
    store = Store.open(db_url)
    try:
        engine = Engine(store, runbook or load_runbook(DEFAULT_RUNBOOK), now=clock.now())
        config = engine.add_config_store(shop_config(clock.now()))
        buffer, holder = engine.attach(SHOP_SERVICE, version="2.14.0")
        app = StanchMiddleware(
            create_shop(config, clock, seed=scenario.seed),
            buffer=buffer,
            policy=holder,
            clock=clock.now,
        )
        operator = DemoOperator(engine, clock, scenario)
        events: list[tuple[float, str, dict[str, Any]]] = []

        def listen(name: str, details: dict[str, Any]) -> None:
            events.append((clock.now(), name, details))
            operator.on_event(name, details)
            if on_event is not None:
                on_event(clock.now(), name, details)

        engine.listeners.append(listen)
        script = _script(engine, scenario, listen)

        def tick(now: float) -> None:
            while script and script[0][0] <= now:
                script.pop(0)[1](now)
            operator.act(now)
            engine.step(now)

        profile = TrafficProfile(base_rps=scenario.base_rps)
        specs = generate(
            scenario.start,
            scenario.duration_s,
            profile,
            seed=scenario.seed,
            floods=scenario.floods,
        )
        stats = await run(app, specs, clock, tick, until=scenario.start + scenario.duration_s)
        report = DemoReport(
            scenario=scenario,
            incidents=sorted(engine.incidents.values(), key=lambda i: i.id),
            actions={i: engine.incident_actions(i) for i in sorted(engine.incidents)},
            traffic=stats,
            wall_seconds=0.0,
            events=events,
        )
        report.postmortems = write_postmortems(store, report.incidents, out_dir)
        report.wall_seconds = time.perf_counter() - wall_start
        return report
    finally:
        store.close()


def _script(
    engine: Engine, scenario: Scenario, listen: Callable[[str, dict[str, Any]], None]
) -> list[tuple[float, Callable[[float], None]]]:
    """The changes people make during the demo, as (time, what) in time order."""
    from stanch.core.events import ChangeEvent, ChangeKind

    def deploy(now: float) -> None:
        engine.record_change(
            ChangeEvent(
                id="deploy-2.14.0",
                ts=now,
                service=SHOP_SERVICE,
                kind=ChangeKind.DEPLOY,
                summary="deploy shop 2.14.0 (catalogue page redesign)",
                actor="ci-pipeline",
                version="2.14.0",
                routes=("GET /products", "GET /products/{product_id}"),
            )
        )
        listen("change", {"summary": "deploy shop 2.14.0"})

    def bad_config(now: float) -> None:
        change = engine.change_config(
            SHOP_SERVICE,
            now,
            {"payments.timeout_ms": scenario.bad_timeout_ms},
            author="bob",
            reason="fail fast on slow payments (PR #482)",
        )
        listen("change", {"summary": change.summary})

    def unrelated(now: float) -> None:
        change = engine.change_config(
            SHOP_SERVICE,
            now,
            {"search.max_results": 25},
            author="carol",
            reason="show a few more results",
        )
        listen("change", {"summary": change.summary})

    s = scenario
    steps = [
        (s.start + s.deploy_at_s, deploy),
        (s.start + s.bad_config_at_s, bad_config),
        (s.start + s.unrelated_change_at_s, unrelated),
    ]
    return sorted(steps, key=lambda item: item[0])


def write_postmortems(store: Store, incidents: list[Incident], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for incident in incidents:
        saved = store.get_postmortem(incident.id)
        if saved is None:
            continue
        path = out_dir / f"{incident.id}.md"
        path.write_text(saved[0], encoding="utf-8")
        written[incident.id] = path
    return written


def fresh_output(out_dir: Path) -> str:
    """Start the demo from an empty output folder and database; returns the database URL."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    return f"sqlite:///{out_dir / 'demo.db'}"
