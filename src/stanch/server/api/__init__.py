"""The ``/api/v1`` routers; :data:`ROUTERS` is what :func:`stanch.server.app.create_app` mounts."""

from fastapi import APIRouter

from stanch.server.api import (
    actions,
    admin,
    agents,
    config,
    incidents,
    ingest,
    reports,
    runbook,
    silences,
    webhooks,
)

ROUTERS: tuple[APIRouter, ...] = (
    ingest.router,
    agents.router,
    webhooks.router,
    reports.router,
    incidents.router,
    actions.router,
    silences.router,
    runbook.router,
    config.router,
    admin.router,
)

__all__ = ["ROUTERS"]
