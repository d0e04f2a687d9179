"""Agents as the server hears them: instances per service and the events they lost.

``GET /api/v1/agents`` answers, per service, how many agent instances were heard from lately,
how many events they lost before the server saw them (their own cumulative reports; see
:mod:`stanch.server.agents`) and when a loss was last reported. A traffic dip on a service whose
agents report losses is a gap in Stanch's data, not necessarily in the service's traffic.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from stanch.server.agents import ACTIVE_S, ServiceAgents
from stanch.server.api.common import Ctx, errors
from stanch.server.auth import Permission, require

router = APIRouter(prefix="/agents", tags=["agents"], responses=errors(401, 403))


class AgentInstanceOut(BaseModel):
    agent: str = Field(description="The instance id its Stanch-Agent header gave")
    last_seen: float = Field(description="Server time (epoch seconds) of its last request")
    dropped: int = Field(description="Events it reported lost since it started")
    active: bool = Field(description=f"Heard from within the last {ACTIVE_S:g} s")


class ServiceAgentsOut(BaseModel):
    service: str
    active: int = Field(description=f"Instances heard from within the last {ACTIVE_S:g} s")
    dropped: int = Field(description="Events its agents lost, summed over every instance ever")
    last_drop_at: float | None = Field(description="When a loss was last reported, if ever")
    instances: list[AgentInstanceOut] = Field(description="Known instances, most recent first")


@router.get("", response_model=list[ServiceAgentsOut], summary="Agent instances and their losses")
async def list_agents(
    ctx: Ctx, _: Any = Depends(require(Permission.READ))
) -> list[ServiceAgentsOut]:
    now = ctx.clock()
    return [_service_out(entry, now) for entry in ctx.agents.services()]


def _service_out(entry: ServiceAgents, now: float) -> ServiceAgentsOut:
    instances = sorted(entry.instances.values(), key=lambda a: a.last_seen, reverse=True)
    return ServiceAgentsOut(
        service=entry.service,
        active=entry.active(now),
        dropped=entry.dropped,
        last_drop_at=entry.last_drop_at,
        instances=[
            AgentInstanceOut(
                agent=a.agent,
                last_seen=a.last_seen,
                dropped=a.dropped,
                active=now - a.last_seen <= ACTIVE_S,
            )
            for a in instances
        ],
    )
