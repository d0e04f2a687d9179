"""The demo's world behind a real control plane, stopped where a responder has work to do.

The demo shop runs behind Stanch's middleware on a simulated clock (the demo's own scenario:
a deploy, then the bad payment-timeout change, and a client flooding search), and a
:class:`~stanch.server.ServerContext` wraps its engine and store exactly as ``stanch serve``
would. The runbook is the demo's, except that a human must approve checkout's breaker and the
config rollback, and nobody does: the world stops with the checkout incident open and both
actions pending. The clock then stays put, so pages and screenshots are the same every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from stanch.core.runbook import load_runbook_text
from stanch.demo.scenario import DEFAULT_RUNBOOK, DemoWorld, Scenario
from stanch.server import ServerContext, Settings, create_app
from stanch.server.auth import Role, issue_token

RUNBOOK_NAME = "demo-runbook.yaml"
BAD_CONFIG_AT_S = 480.0
FLOOD_AT_S = 380.0
STOP_AT_S = 600.0  # two minutes into the checkout incident


def approval_runbook() -> str:
    """The demo runbook with checkout's automatic actions turned into approvals."""
    text = DEFAULT_RUNBOOK.read_text(encoding="utf-8")
    before = text.count("mode: auto")
    text = text.replace("mode: auto", "mode: approve")
    assert before == 2, "the demo runbook changed: update approval_runbook()"
    return text


@dataclass
class DemoServer:
    world: DemoWorld
    ctx: ServerContext
    app: FastAPI
    tokens: dict[Role, str]

    def close(self) -> None:
        self.ctx.close()
        self.world.close()


async def demo_server(db_url: str, *, stop_at_s: float = STOP_AT_S) -> DemoServer:
    scenario = Scenario(
        bad_config_at_s=BAD_CONFIG_AT_S,
        flood_start_s=FLOOD_AT_S,
        flood_end_s=1e9,
        unrelated_change_at_s=1e9,
        operator_delay_s=1e9,  # the demo's operator never approves: the test's responder does
    )
    text = approval_runbook()
    runbook = load_runbook_text(text, RUNBOOK_NAME)
    world = DemoWorld(scenario, db_url=db_url, runbook=runbook)
    settings = Settings(db=db_url, run_loop=False, step_lag_s=0.0)
    ctx = ServerContext(settings, world.store, world.engine, clock=world.clock.now)
    ctx.save_runbook(runbook, text, source=RUNBOOK_NAME, actor="test", startup=True)
    app = create_app(ctx)
    await world.run(scenario.start + stop_at_s)
    tokens = {
        role: issue_token(ctx.store, f"{role.value}-person", role.value, created_by="test", now=0)[
            1
        ]
        for role in Role
    }
    return DemoServer(world, ctx, app, tokens)
