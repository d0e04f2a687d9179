"""Incidents: list with filters, show, acknowledge, comment, resolve, and post-mortems."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, StringConstraints

from stanch.core.errors import NotFound
from stanch.core.incidents import IncidentState
from stanch.core.postmortem import draft_postmortem, render_markdown
from stanch.core.severity import Severity
from stanch.server.api.common import BODY_ERRORS, Ctx, Reason, errors
from stanch.server.api.schemas import (
    IncidentOut,
    IncidentSummaryOut,
    PostmortemOut,
    incident_out,
    incident_summary_out,
)
from stanch.server.auth import Permission, Principal, require

router = APIRouter(prefix="/incidents", tags=["incidents"], responses=errors(401, 403))


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Reason = ""


@router.get("", response_model=list[IncidentSummaryOut], summary="Incidents, newest first")
async def list_incidents(
    ctx: Ctx,
    state: IncidentState | None = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    severity: Severity | None = None,
    open_only: bool = Query(False, alias="open", description="Only incidents not resolved"),
    limit: int = Query(100, ge=1, le=1000),
    _: Any = Depends(require(Permission.READ)),
) -> list[IncidentSummaryOut]:
    found = ctx.store.list_incidents(
        state=state.value if state else None,
        service=service,
        open_only=open_only,
        limit=None if severity else limit,
    )
    if severity is not None:
        found = [i for i in found if i.severity is severity][:limit]
    return [incident_summary_out(i) for i in found]


@router.get(
    "/{incident_id}",
    response_model=IncidentOut,
    responses=errors(404),
    summary="One incident: alerts, suspects, actions, timeline",
)
async def get_incident(
    incident_id: str, ctx: Ctx, _: Any = Depends(require(Permission.READ))
) -> IncidentOut:
    incident = ctx.store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return incident_out(incident, ctx.store.list_actions(incident_id=incident_id))


@router.post(
    "/{incident_id}/acknowledge",
    response_model=IncidentOut,
    responses=errors(404, 409),
    summary="Take ownership of an incident",
)
async def acknowledge(
    incident_id: str, ctx: Ctx, who: Principal = Depends(require(Permission.RESPOND))
) -> IncidentOut:
    before = _state(ctx, incident_id)
    incident = ctx.engine.acknowledge(incident_id, actor=who.name, now=ctx.now())
    ctx.audit.record(
        who.actor,
        "api.incidents.acknowledge",
        incident_id,
        before={"state": before},
        after={"state": incident.state.value, "acknowledged_by": incident.acknowledged_by},
    )
    return incident_out(incident, ctx.engine.incident_actions(incident_id))


@router.post(
    "/{incident_id}/comments",
    response_model=IncidentOut,
    responses=errors(404, *BODY_ERRORS),
    summary="Add a comment to the timeline",
)
async def comment(
    incident_id: str,
    body: CommentIn,
    ctx: Ctx,
    who: Principal = Depends(require(Permission.RESPOND)),
) -> IncidentOut:
    incident = ctx.engine.comment(incident_id, body.text, actor=who.name, now=ctx.now())
    ctx.audit.record(who.actor, "api.incidents.comment", incident_id, why=body.text)
    return incident_out(incident, ctx.engine.incident_actions(incident_id))


@router.post(
    "/{incident_id}/resolve",
    response_model=IncidentOut,
    responses=errors(404, 409, *BODY_ERRORS),
    summary="Declare an incident over (its active actions are lifted)",
)
async def resolve(
    incident_id: str,
    body: ResolveIn,
    ctx: Ctx,
    who: Principal = Depends(require(Permission.RESPOND)),
) -> IncidentOut:
    before = _state(ctx, incident_id)
    incident = ctx.engine.resolve(
        incident_id, actor=who.name, now=ctx.now(), resolution=body.resolution
    )
    ctx.audit.record(
        who.actor,
        "api.incidents.resolve",
        incident_id,
        before={"state": before},
        after={"state": incident.state.value},
        why=body.resolution,
    )
    ctx.changed()
    return incident_out(incident, ctx.engine.incident_actions(incident_id))


@router.get(
    "/{incident_id}/postmortem",
    response_model=PostmortemOut,
    responses=errors(404),
    summary="The post-mortem (saved when resolved; drafted on demand before)",
)
async def postmortem(
    incident_id: str, ctx: Ctx, _: Any = Depends(require(Permission.READ))
) -> PostmortemOut:
    saved = ctx.store.get_postmortem(incident_id)
    if saved is not None:
        return PostmortemOut(
            incident_id=incident_id, markdown=saved[0], document=saved[1], saved=True
        )
    incident = ctx.store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} does not exist")
    draft = draft_postmortem(incident, ctx.store.list_actions(incident_id=incident_id))
    return PostmortemOut(
        incident_id=incident_id,
        markdown=render_markdown(draft),
        document=draft.to_dict(),
        saved=False,
    )


def _state(ctx: Ctx, incident_id: str) -> str:
    incident = ctx.engine.incidents.get(incident_id) or ctx.store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return incident.state.value
