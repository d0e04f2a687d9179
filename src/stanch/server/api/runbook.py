"""The runbook: read it, check a candidate, replace it (the engine uses the new one at once)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from stanch.core.errors import RunbookError
from stanch.core.runbook import MAX_RUNBOOK_BYTES, Runbook, load_runbook_text
from stanch.server.api.common import BODY_ERRORS, Ctx, errors
from stanch.server.api.schemas import RuleOut, RunbookCheckOut, RunbookOut, RunbookRejectedOut
from stanch.server.auth import Permission, Principal, require
from stanch.server.context import RUNBOOK_META

router = APIRouter(prefix="/runbook", tags=["runbook"], responses=errors(401, 403))

_Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_RUNBOOK_BYTES)]
_Source = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RunbookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: _Text
    source: _Source = "api"


@router.get("", response_model=RunbookOut, summary="The runbook in force")
async def get_runbook(ctx: Ctx, _: Any = Depends(require(Permission.READ))) -> RunbookOut:
    stored = ctx.store.get_meta(RUNBOOK_META) or {}
    return RunbookOut(
        source=str(stored.get("source", ctx.engine.runbook.source)),
        text=str(stored.get("text", "")),
        updated_at=stored.get("updated_at"),
        updated_by=str(stored.get("updated_by", "")),
        rules=_rules(ctx.engine.runbook),
    )


@router.post(
    "/validate",
    response_model=RunbookCheckOut,
    responses=errors(*BODY_ERRORS),
    summary="Check a runbook without using it",
)
async def validate_runbook(
    body: RunbookIn, _: Any = Depends(require(Permission.READ))
) -> RunbookCheckOut:
    try:
        runbook = load_runbook_text(body.text, body.source)
    except RunbookError as exc:
        return RunbookCheckOut(valid=False, problems=exc.problems, rules=0)
    return RunbookCheckOut(valid=True, problems=[], rules=len(runbook.rules))


@router.put(
    "",
    response_model=RunbookOut,
    responses={
        **errors(413, 415),
        400: {"model": RunbookRejectedOut, "description": "The runbook does not validate"},
    },
    summary="Replace the runbook (validated first; the engine uses it at once)",
)
async def put_runbook(
    body: RunbookIn, ctx: Ctx, who: Principal = Depends(require(Permission.ADMIN))
) -> Any:
    try:
        runbook = load_runbook_text(body.text, body.source)
    except RunbookError as exc:
        return JSONResponse(
            {
                "detail": f"runbook refused: {len(exc.problems)} problem(s)",
                "problems": exc.problems,
            },
            status_code=400,
        )
    ctx.save_runbook(runbook, body.text, source=body.source, actor=who.actor)
    return await get_runbook(ctx, who)


def _rules(runbook: Runbook) -> list[RuleOut]:
    return [
        RuleOut(
            name=rule.name,
            description=rule.description,
            kinds=sorted(k.value for k in rule.match.kinds),
            actions=[f"{a.kind.value} ({a.mode.value})" for a in rule.actions],
            stop=rule.stop,
        )
        for rule in runbook.rules
    ]
