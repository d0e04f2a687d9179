"""Administration: API tokens and the audit log (role admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, StringConstraints

from stanch.core.audit import Anchor, verify
from stanch.server.api.common import BODY_ERRORS, Ctx, errors
from stanch.server.api.schemas import (
    AuditEntryOut,
    AuditVerifyOut,
    TokenCreatedOut,
    TokenOut,
    audit_entry_out,
    problem_out,
    token_out,
)
from stanch.server.auth import Permission, Principal, Role, issue_token, require

router = APIRouter(tags=["admin"], responses=errors(401, 403))


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    role: Role


@router.get("/tokens", response_model=list[TokenOut], summary="API tokens (never their secrets)")
async def list_tokens(ctx: Ctx, _: Any = Depends(require(Permission.ADMIN))) -> list[TokenOut]:
    return [token_out(t) for t in ctx.store.list_tokens()]


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreatedOut,
    responses=errors(*BODY_ERRORS),
    summary="Create a token; its secret is in this answer only",
)
async def create_token(
    body: TokenIn, ctx: Ctx, who: Principal = Depends(require(Permission.ADMIN))
) -> TokenCreatedOut:
    stored, secret = issue_token(
        ctx.store, body.name, body.role.value, created_by=who.name, now=ctx.clock()
    )
    ctx.audit.record(
        who.actor, "token.create", stored.id, after={"name": stored.name, "role": stored.role}
    )
    return TokenCreatedOut(**token_out(stored).model_dump(), token=secret)


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenOut,
    responses=errors(404),
    summary="Revoke a token (at once on this server)",
)
async def revoke_token(
    token_id: str, ctx: Ctx, who: Principal = Depends(require(Permission.ADMIN))
) -> TokenOut:
    stored = ctx.store.revoke_token(token_id, ctx.clock())
    ctx.tokens.forget(token_id)
    ctx.audit.record(
        who.actor,
        "token.revoke",
        token_id,
        before={"revoked": False},
        after={"revoked": True, "name": stored.name},
    )
    return token_out(stored)


@router.get("/audit", response_model=list[AuditEntryOut], summary="Audit entries in chain order")
async def audit_log(
    ctx: Ctx,
    after: int = Query(0, ge=0, description="Only entries with a larger seq"),
    limit: int = Query(100, ge=1, le=1000),
    _: Any = Depends(require(Permission.ADMIN)),
) -> list[AuditEntryOut]:
    return [audit_entry_out(e) for e in ctx.store.audit_entries(after_seq=after, limit=limit)]


@router.get(
    "/audit/verify",
    response_model=AuditVerifyOut,
    responses=errors(400),
    summary="Check the hash chain (and heads recorded elsewhere)",
)
async def audit_verify(
    ctx: Ctx,
    anchor: list[str] = Query(
        [],
        max_length=1000,
        description="Heads recorded earlier, SEQ:HASH (repeatable): entries cut from the end "
        "of the chain or rewritten with recomputed hashes are then named too",
    ),
    _: Any = Depends(require(Permission.ADMIN)),
) -> AuditVerifyOut:
    try:
        anchors = [Anchor.parse(text) for text in anchor]
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    entries = ctx.store.audit_entries()
    problems = verify(entries, anchors)
    head = entries[-1] if entries else None
    return AuditVerifyOut(
        entries=len(entries),
        intact=not problems,
        head_seq=head.seq if head else None,
        head_hash=head.hash if head else None,
        problems=[problem_out(p) for p in problems],
    )
