"""``stanch demo --live`` serves the dashboard around the demo's own engine."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from stanch.clock import WallClock
from stanch.demo.live import _dashboard, live_scenario
from stanch.demo.scenario import DemoWorld

from .conftest import sign_in


async def test_the_live_demo_dashboard_signs_in_with_its_printed_token(tmp_path: Path) -> None:
    """The demo's control plane wraps the world's engine and store, stores the runbook for the
    runbook page, and the admin token it prints opens every page, the audit log included."""
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    world = DemoWorld(live_scenario(time.time(), 7), db_url=db_url, clock=WallClock())
    ctx, app, token = _dashboard(world, db_url)
    try:
        assert ctx.engine is world.engine
        world.tick(time.time())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            assert (await sign_in(client, token)).status_code == 303
            for path in ("/", "/runbook", "/config/shop", "/audit"):
                assert (await client.get(path)).status_code == 200, path
            assert "checkout-errors" in (await client.get("/runbook")).text
    finally:
        ctx.close()
        world.close()
