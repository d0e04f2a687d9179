"""``stanch demo --live``: the same scenario on the wall clock, with the shop on localhost.

The shop runs under uvicorn behind Stanch's middleware; a traffic generator sends real HTTP
requests to it; the engine steps once a second. The scenario is compressed (the bad config
change after 3 minutes, the flood after 7) so a person can watch it, and curl the shop while it
happens: their requests are throttled or refused exactly like the generator's.

The control plane's dashboard runs beside it on ``dashboard_port`` around the same engine, with
an admin token made for this run (printed, and in the sign-in link's fragment, which browsers
never send to a server): a newcomer watches the incidents open and can approve the flood's
throttle before the demo's operator does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console

from stanch.clock import WallClock
from stanch.demo.driver import DriveStats
from stanch.demo.report import describe_event, print_report
from stanch.demo.scenario import (
    DEFAULT_RUNBOOK,
    DemoReport,
    DemoWorld,
    Scenario,
    fresh_output,
    write_postmortems,
)
from stanch.demo.traffic import RequestSpec, TrafficProfile, generate
from stanch.server.app import create_app
from stanch.server.auth import issue_token
from stanch.server.context import ServerContext
from stanch.server.settings import Settings

MAX_IN_FLIGHT = 256


def live_scenario(start: float, seed: int) -> Scenario:
    return Scenario(
        start=start,
        duration_s=780.0,
        deploy_at_s=60.0,
        bad_config_at_s=180.0,
        unrelated_change_at_s=300.0,
        flood_start_s=420.0,
        flood_end_s=540.0,
        seed=seed,
    )


async def _send(client: httpx.AsyncClient, spec: RequestSpec, gate: asyncio.Semaphore) -> None:
    async with gate:
        with contextlib.suppress(httpx.HTTPError):
            await client.request(
                spec.method,
                spec.path,
                content=spec.body or None,
                headers={"x-client-id": spec.client, "content-type": spec.content_type},
            )


async def _traffic(world: DemoWorld, base_url: str, until: float) -> int:
    """Send the scenario's requests at their wall-clock times; returns how many were sent."""
    scenario = world.scenario
    begin = time.time()
    specs = generate(
        begin,
        until - begin,
        TrafficProfile(base_rps=scenario.base_rps),
        seed=scenario.seed,
        floods=scenario.floods,
    )
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    sent = 0
    tasks: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits) as client:
        for spec in specs:
            delay = spec.t - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(_send(client, spec, gate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        if tasks:
            await asyncio.gather(*tasks)
    return sent


async def _engine_loop(world: DemoWorld, until: float) -> None:
    next_tick = float(int(time.time())) + 1.0
    while next_tick <= until + 1.0:
        await asyncio.sleep(max(0.0, next_tick - time.time()))
        world.tick(next_tick)
        next_tick += 1.0


def _dashboard(world: DemoWorld, db_url: str) -> tuple[ServerContext, Any, str]:
    """The control plane around the demo's engine (its step loop off: the demo ticks), and an
    admin token for this run."""
    ctx = ServerContext(
        Settings(db=db_url, run_loop=False, step_lag_s=0.0), world.store, world.engine
    )
    ctx.save_runbook(
        world.engine.runbook,
        DEFAULT_RUNBOOK.read_text(encoding="utf-8"),
        source=str(DEFAULT_RUNBOOK.name),
        actor="stanch demo",
        startup=True,
    )
    _, token = issue_token(ctx.store, "demo", "admin", created_by="stanch demo", now=time.time())
    return ctx, create_app(ctx), token


def _listen(port: int) -> socket.socket | None:
    """A listening socket on loopback, or None if the port is taken (uvicorn would exit)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


async def run_live(
    *, out_dir: Path, port: int, seed: int, console: Console, dashboard_port: int = 8080
) -> DemoReport:
    db_url = fresh_output(out_dir)
    scenario = live_scenario(time.time(), seed)

    def show(now: float, name: str, details: dict[str, Any]) -> None:
        line = describe_event(scenario, now, name, details)
        if line:
            console.print(line)

    world = DemoWorld(scenario, db_url=db_url, on_event=show, clock=WallClock())
    server = uvicorn.Server(
        uvicorn.Config(
            world.app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    if dashboard_port == port:
        dashboard_port = port + 1
    ctx, dashboard_app, token = _dashboard(world, db_url)
    dashboard = uvicorn.Server(
        uvicorn.Config(
            dashboard_app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            port=dashboard_port,
        )
    )
    dashboard_socket = _listen(dashboard_port)
    if dashboard_socket is None:
        console.print(f"[yellow]port {dashboard_port} is taken: no dashboard this time[/]")
    else:
        console.print(  # soft_wrap: a link broken over two lines cannot be clicked
            f"[bold]Dashboard[/]: http://127.0.0.1:{dashboard_port}/login#token={token}\n"
            f"  (or sign in at http://127.0.0.1:{dashboard_port}/ with the admin token {token})",
            soft_wrap=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    console.print(
        f"[bold]Stanch live demo[/]: the shop is on {base_url} for the next "
        f"{scenario.duration_s / 60:.0f} minutes. Try:\n"
        f"  curl -s {base_url}/products | head -c 200\n"
        f"  curl -s -X POST {base_url}/checkout -H 'content-type: application/json' "
        '-d \'{"items": [{"product_id": 1, "qty": 1}], "card_token": "tok_visa"}\'\n'
        f"  curl -si {base_url}/search?q=lamp -H 'x-client-id: {scenario.flood_client}'\n"
        f"The bad config change lands at +{scenario.bad_config_at_s / 60:.0f} min, the flood at "
        f"+{scenario.flood_start_s / 60:.0f} min. In another terminal: "
        f"stanch actions list --db {out_dir / 'demo.db'}\n"
    )
    until = scenario.start + scenario.duration_s
    wall_start = time.perf_counter()
    server_task = asyncio.create_task(server.serve())
    dashboard_task = asyncio.create_task(
        dashboard.serve(sockets=[dashboard_socket]) if dashboard_socket else asyncio.sleep(0)
    )
    try:
        while not server.started:
            if server_task.done():
                raise RuntimeError(f"the shop could not listen on port {port}")
            await asyncio.sleep(0.05)
        engine_task = asyncio.create_task(_engine_loop(world, until))
        sent = await _traffic(world, base_url, until)
        await engine_task
    finally:
        server.should_exit = True
        dashboard.should_exit = True
        await server_task
        await dashboard_task
        ctx.close()
    engine = world.engine
    report = DemoReport(
        scenario=scenario,
        incidents=sorted(engine.incidents.values(), key=lambda i: i.id),
        actions={i: engine.incident_actions(i) for i in sorted(engine.incidents)},
        traffic=DriveStats(requests=sent),
        wall_seconds=time.perf_counter() - wall_start,
        events=world.events,
    )
    report.postmortems = write_postmortems(world.store, report.incidents, out_dir)
    world.close()
    print_report(report, console, db_url=db_url, live=True)
    return report
