"""The application shell: settings from the environment, the step loop, unexpected errors."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends

from stanch.core.errors import ValidationError
from stanch.engine import EngineConfig
from stanch.server import ServerContext, Settings, create_app
from stanch.server.auth import Permission, require


def test_settings_read_the_environment() -> None:
    """STANCH_* variables fill the settings; explicit values win; a bare path is SQLite."""
    env = {
        "STANCH_DB": "/tmp/x.db",
        "STANCH_PORT": "9000",
        "STANCH_INTERVAL": "0.5",
        "STANCH_WEBHOOK_SECRET_ALERTMANAGER": "s3cret",
    }
    settings = Settings.from_env(env, port=9001)
    assert settings.db == "sqlite:////tmp/x.db"
    assert (settings.port, settings.interval_s) == (9001, 0.5)
    assert settings.webhook_secrets == {"alertmanager": "s3cret"}
    with pytest.raises(ValidationError, match="STANCH_PORT"):
        Settings.from_env({"STANCH_PORT": "eighty"})
    with pytest.raises(ValidationError, match="unknown sources: grafana"):
        Settings.from_env({"STANCH_WEBHOOK_SECRET_GRAFANA": "x"})


def test_settings_read_the_series_caps() -> None:
    """STANCH_MAX_SERIES / STANCH_MAX_ROUTES_PER_SERVICE are read; unset, the engine's apply."""
    assert (Settings().max_series, Settings().max_routes_per_service) == (None, None)
    env = {"STANCH_MAX_SERIES": "2000", "STANCH_MAX_ROUTES_PER_SERVICE": "300"}
    settings = Settings.from_env(env)
    assert (settings.max_series, settings.max_routes_per_service) == (2000, 300)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STANCH_MAX_SERIES": "lots"}, "STANCH_MAX_SERIES: cannot read 'lots'"),
        ({"STANCH_MAX_SERIES": "1"}, r"max_series \(STANCH_MAX_SERIES\) must be between 2"),
        ({"STANCH_MAX_SERIES": "-5"}, "must be between 2 and"),
        ({"STANCH_MAX_SERIES": "10000000"}, "must be between 2 and 100000"),
        ({"STANCH_MAX_ROUTES_PER_SERVICE": "0"}, "STANCH_MAX_ROUTES_PER_SERVICE.* between 1"),
        ({"STANCH_MAX_ROUTES_PER_SERVICE": "1.5"}, "STANCH_MAX_ROUTES_PER_SERVICE: cannot read"),
        (
            {"STANCH_MAX_SERIES": "100", "STANCH_MAX_ROUTES_PER_SERVICE": "200"},
            r"max_routes_per_service .*200\) must not exceed max_series .*100\)",
        ),
        ({"STANCH_MAX_ROUTES_PER_SERVICE": "501"}, "must not exceed max_series .*500"),
    ],
)
def test_settings_reject_bad_series_caps(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.from_env(env)


def test_the_series_caps_reach_the_engine(tmp_path: Path) -> None:
    """The settings' caps override the engine config's; unset ones keep it."""
    settings = Settings(db=f"sqlite:///{tmp_path / 'x.db'}", max_routes_per_service=50)
    ctx = ServerContext.open(settings, engine_config=EngineConfig(max_series=800))
    try:
        guard = ctx.engine.guard
        assert (guard.max_series, guard.max_routes_per_service) == (800, 50)
    finally:
        ctx.close()


async def test_the_lifespan_runs_the_step_loop(ctx: ServerContext) -> None:
    """With run_loop on, the app's lifespan steps the engine every interval, and stops."""
    ctx.settings = replace(ctx.settings, run_loop=True, interval_s=0.01)
    app = create_app(ctx)
    ctx.clock.t += 5  # type: ignore[attr-defined]
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.1)
    assert ctx.engine.last_step == ctx.clock()


async def test_unexpected_errors_are_500_with_an_id(
    ctx: ServerContext, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a handler answers 500 with an error id, which the log repeats."""
    broken = APIRouter()

    @broken.get("/broken")
    async def broken_route(_: object = Depends(require(Permission.PUBLIC))) -> None:
        raise RuntimeError("boom")

    app = create_app(ctx, routers=[broken])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/api/v1/broken")
    assert response.status_code == 500
    error_id = response.json()["detail"].removeprefix("internal error ")
    assert error_id in caplog.text


def test_open_refuses_a_bad_runbook_and_closes_the_store(db_url: str, tmp_path: Path) -> None:
    """A runbook that does not validate stops the bootstrap with its problems."""
    bad = tmp_path / "rb.yaml"
    bad.write_text("version: 1\nrules: 7\n")
    with pytest.raises(ValidationError, match="rules"):
        ServerContext.open(Settings(db=db_url, runbook=bad))


async def test_openapi_documents_the_error_answers(app_openapi: dict) -> None:  # type: ignore[type-arg]
    """Body routes document 400/413/415; PagerDuty's 400 uses its own shape."""
    paths = app_openapi["paths"]
    events = paths["/api/v1/events"]["post"]["responses"]
    assert {"202", "400", "401", "403", "413", "415", "422", "503"} <= set(events)
    pd = paths["/api/v1/pagerduty/v2/enqueue"]["post"]["responses"]["400"]
    assert pd["content"]["application/json"]["schema"]["$ref"].endswith("PagerDutyErrorOut")
    assert "304" in paths["/api/v1/policy/{service}"]["get"]["responses"]


@pytest.fixture
async def app_openapi(client: httpx.AsyncClient) -> dict:  # type: ignore[type-arg]
    return (await client.get("/api/v1/openapi.json")).json()  # type: ignore[no-any-return]
