"""Fixtures: a real server context on a temporary SQLite store, a fake clock, one token per
role, and an httpx client speaking ASGI to the app (the step loop off: tests step by hand)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from stanch.core.detection_config import DetectionConfig
from stanch.engine import EngineConfig
from stanch.server import ServerContext, Settings, create_app
from stanch.server.auth import Role, issue_token

from .helpers import T0, Clock

RUNBOOK = """
version: 1
defaults: {ttl: 10m, verify_within: 1m}
rules:
  - name: pay-errors
    match: {kinds: [error_burst], routes: ["POST /pay"]}
    actions:
      - {kind: circuit_break, mode: approve, params: {open_for: 10s}}
"""

SECRETS = {"alertmanager": "am-secret", "pagerduty": "pd-secret", "reports": "rp-secret"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runbook_path(tmp_path: Path) -> Path:
    path = tmp_path / "runbook.yaml"
    path.write_text(RUNBOOK, encoding="utf-8")
    return path


@pytest.fixture
def settings(db_url: str, runbook_path: Path) -> Settings:
    return Settings(
        db=db_url,
        runbook=runbook_path,
        run_loop=False,
        step_lag_s=0.0,
        webhook_secrets=SECRETS,
        ingest_capacity=5_000,
    )


FAST = EngineConfig(detection=DetectionConfig(warmup_s=30.0))


@pytest.fixture
def ctx(settings: Settings, clock: Clock) -> Iterator[ServerContext]:
    opened = ServerContext.open(settings, clock=clock, engine_config=FAST)
    yield opened
    opened.close()


@pytest.fixture
def app(ctx: ServerContext) -> FastAPI:
    return create_app(ctx)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stanch.test") as c:
        yield c


@pytest.fixture
def tokens(ctx: ServerContext) -> dict[Role, str]:
    """One token per role, named after it (so the audit shows "responder (responder)")."""
    return {
        role: issue_token(ctx.store, role.value, role.value, created_by="test", now=T0)[1]
        for role in Role
    }
