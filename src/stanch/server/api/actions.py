"""Actions: list, show, and the human decisions on them (approve, reject, revert).

Decisions take effect at once: the server's engine applies an approval (the policy changes
and agents long-polling for it hear about it), lifts a reverted action, and records who did
it on the incident's timeline and in the audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from stanch.core.actions import Action, ActionState
from stanch.core.errors import NotFound
from stanch.server.api.common import BODY_ERRORS, Ctx, Reason, errors
from stanch.server.api.schemas import ActionOut, action_out
from stanch.server.auth import Permission, Principal, require
from stanch.server.context import ServerContext

router = APIRouter(prefix="/actions", tags=["actions"], responses=errors(401, 403))


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = ""


@router.get("", response_model=list[ActionOut], summary="Actions, pending ones first")
async def list_actions(
    ctx: Ctx,
    state: ActionState | None = None,
    incident: Annotated[str | None, Query(max_length=200)] = None,
    _: Any = Depends(require(Permission.READ)),
) -> list[ActionOut]:
    found = ctx.store.list_actions(state=state.value if state else None, incident_id=incident)
    found.sort(key=lambda a: (a.state is not ActionState.PENDING, a.id))
    return [action_out(a) for a in found]


@router.get("/{action_id}", response_model=ActionOut, responses=errors(404), summary="One action")
async def get_action(
    action_id: str, ctx: Ctx, _: Any = Depends(require(Permission.READ))
) -> ActionOut:
    return action_out(_find(ctx, action_id))


def _decision(verb: str) -> Any:
    async def decide(
        action_id: str,
        body: DecisionIn,
        ctx: Ctx,
        who: Principal = Depends(require(Permission.RESPOND)),
    ) -> ActionOut:
        before = _find(ctx, action_id).state.value
        now = ctx.now()
        if verb == "revert":
            action = ctx.engine.revert(action_id, actor=who.name, now=now, reason=body.reason)
        else:
            action = ctx.engine.decide(
                action_id, verb == "approve", actor=who.name, now=now, reason=body.reason
            )
        ctx.audit.record(
            who.actor,
            f"api.actions.{verb}",
            action_id,
            before={"state": before},
            after={"state": action.state.value},
            why=body.reason,
        )
        ctx.changed()
        return action_out(action)

    decide.__name__ = f"{verb}_action"
    return decide


for _verb, _summary in (
    ("approve", "Approve an action waiting for a human; it is applied at once"),
    ("reject", "Reject an action waiting for a human"),
    ("revert", "Lift an active action now"),
):
    router.add_api_route(
        f"/{{action_id}}/{_verb}",
        _decision(_verb),
        methods=["POST"],
        response_model=ActionOut,
        responses=errors(404, 409, *BODY_ERRORS),
        summary=_summary,
    )


def _find(ctx: ServerContext, action_id: str) -> Action:
    action = ctx.engine.actions.get(action_id) or ctx.store.get_action(action_id)
    if action is None:
        raise NotFound(f"action {action_id} does not exist")
    return action
