"""The server keeps closed points in the store, so `stanch backtest --db` replays real history."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from stanch.cli import app as cli
from stanch.server import ServerContext, Settings
from stanch.server.auth import Role

from .conftest import FAST
from .helpers import Clock, drive


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's server keeps a week of history (the default keeps none)."""
    return replace(settings, history_days=7)


async def test_served_traffic_is_kept_as_points_and_replays_with_backtest_db(
    client: httpx.AsyncClient,
    ctx: ServerContext,
    clock: Clock,
    tokens: dict[Role, str],
    settings: Settings,
    tmp_path: Path,
) -> None:
    await drive(client, ctx, clock, tokens[Role.AGENT], seconds=40)
    points = list(ctx.store.read_points())
    series = {(p.key.service, p.key.route) for p in points}
    assert {("api", "POST /pay"), ("api", "GET /ping"), ("api", "*")} <= series
    pay = [p for p in points if p.key.route == "POST /pay"]
    assert len(pay) >= 35
    assert sum(p.requests for p in pay) >= 35 * 20 * 0.9  # 20 req/s, as driven
    labels = tmp_path / "labels.yaml"
    labels.write_text("[]\n")
    result = CliRunner().invoke(cli, ["backtest", "--db", settings.db, "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert "replayed" in result.output


def test_history_is_opt_in(settings: Settings, clock: Clock) -> None:
    assert Settings().history_days == 0
    assert Settings.from_env({"STANCH_HISTORY_DAYS": "3"}).history_days == 3
    ctx = ServerContext.open(replace(settings, history_days=0), clock=clock, engine_config=FAST)
    try:
        assert ctx.engine.record is None
    finally:
        ctx.close()
