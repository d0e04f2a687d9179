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

from starlette.routing import Route

from stanch.clock import Clock, SimClock
from stanch.core.actions import Action
from stanch.core.incidents import Incident
from stanch.core.runbook import Runbook, load_runbook
from stanch.demo.driver import DriveStats, run
from stanch.demo.shop import SHOP_SERVICE, create_shop, shop_config
from stanch.demo.traffic import Flood, TrafficProfile, generate
from stanch.engine import Engine
from stanch.metrics import build_registry, metrics_app
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

    def __init__(self, engine: Engine, clock: Clock, scenario: Scenario) -> None:
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


class DemoWorld:
    """What the demo wires together: store, engine, configuration, and the shop behind Stanch.

    ``run(until)`` drives traffic from the clock's current time; a world can be closed mid-run
    and a new one opened on the same database to resume (the restart test does exactly that).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        db_url: str,
        runbook: Runbook | None = None,
        on_event: EventSink | None = None,
        start_at: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock: Clock = clock or SimClock(scenario.start if start_at is None else start_at)
        self.store = Store.open(db_url)
        self.engine = Engine(
            self.store, runbook or load_runbook(DEFAULT_RUNBOOK), now=self.clock.now()
        )
        self.config = self.engine.add_config_store(shop_config(self.clock.now()))
        buffer, holder = self.engine.attach(SHOP_SERVICE, version="2.14.0")
        shop = create_shop(self.config, self.clock, seed=scenario.seed)
        self.app = StanchMiddleware(shop, buffer=buffer, policy=holder, clock=self.clock.now)
        # The shop's /metrics, as Prometheus scrapes it (the middleware does not record it).
        self.metrics = build_registry(self.engine, middleware=self.app, clock=self.clock.now)
        shop.router.routes.append(
            Route("/metrics", metrics_app(self.metrics), include_in_schema=False)
        )
        self.operator = DemoOperator(self.engine, self.clock, scenario)
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self._on_event = on_event
        self.engine.listeners.append(self._listen)
        self._script = [
            item
            for item in _script(self.engine, scenario, self._listen)
            if item[0] >= self.clock.now()
        ]

    def _listen(self, name: str, details: dict[str, Any]) -> None:
        now = self.clock.now()
        self.events.append((now, name, details))
        self.operator.on_event(name, details)
        if self._on_event is not None:
            self._on_event(now, name, details)

    def tick(self, now: float) -> None:
        """Run what is due at ``now``: scripted changes, the operator, one engine step."""
        self._tick(now)

    def _tick(self, now: float) -> None:
        while self._script and self._script[0][0] <= now:
            self._script.pop(0)[1](now)
        self.operator.act(now)
        self.engine.step(now)

    async def run(self, until: float) -> DriveStats:
        """Send the scenario's traffic from now until ``until``, stepping the engine each second."""
        if not isinstance(self.clock, SimClock):
            raise TypeError("run() drives a simulated clock; the live demo uses demo.live")
        begin = self.clock.now()
        profile = TrafficProfile(base_rps=self.scenario.base_rps)
        # Each segment draws its own stream: a resumed run is not a replay of the first one.
        seed = self.scenario.seed + int(begin - self.scenario.start)
        specs = generate(begin, until - begin, profile, seed=seed, floods=self.scenario.floods)
        return await run(self.app, specs, self.clock, self._tick, until=until)

    def close(self) -> None:
        self.engine.checkpoint(self.clock.now())
        self.store.close()


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
    world = DemoWorld(scenario, db_url=db_url, runbook=runbook, on_event=on_event)
    try:
        stats = await world.run(scenario.start + scenario.duration_s)
        engine = world.engine
        report = DemoReport(
            scenario=scenario,
            incidents=sorted(engine.incidents.values(), key=lambda i: i.id),
            actions={i: engine.incident_actions(i) for i in sorted(engine.incidents)},
            traffic=stats,
            wall_seconds=0.0,
            events=world.events,
        )
        report.postmortems = write_postmortems(world.store, report.incidents, out_dir)
        report.wall_seconds = time.perf_counter() - wall_start
        return report
    finally:
        world.close()


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
