"""The configuration store: versions, diffs, changes and rollbacks of a service's settings.

Every change and rollback is a new version (history is never rewritten), a change event for
root-cause ranking, and an audit entry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from stanch.core.config import ConfigStore, ConfigVersion
from stanch.core.errors import NotFound
from stanch.server.api.common import BODY_ERRORS, Ctx, Reason, errors
from stanch.server.api.schemas import ConfigDiffOut, ConfigVersionOut, config_version_out
from stanch.server.auth import Permission, Principal, require
from stanch.server.context import ServerContext

router = APIRouter(prefix="/config", tags=["config"], responses=errors(401, 403, 404))

_Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_Scalar = bool | int | float | Annotated[str, StringConstraints(max_length=10_000)]


class ConfigChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    values: dict[_Key, _Scalar] = Field(min_length=1, max_length=200)
    reason: Reason = ""


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: Annotated[int, Strict()] = Field(ge=1)
    reason: Reason = ""


@router.get(
    "/{service}/versions",
    response_model=list[ConfigVersionOut],
    summary="Every version of a service's configuration, oldest first",
)
async def versions(
    service: str, ctx: Ctx, _: Any = Depends(require(Permission.READ))
) -> list[ConfigVersionOut]:
    return [config_version_out(v) for v in _history(ctx, service)]


@router.get(
    "/{service}/diff",
    response_model=ConfigDiffOut,
    summary="What differs between two versions",
)
async def diff(
    service: str,
    ctx: Ctx,
    from_version: int = Query(ge=1, alias="from"),
    to_version: int = Query(ge=1, alias="to"),
    _: Any = Depends(require(Permission.READ)),
) -> ConfigDiffOut:
    history = {v.version: v for v in _history(ctx, service)}
    for number in (from_version, to_version):
        if number not in history:
            raise NotFound(f"config version {number} of {service} does not exist")
    changes = ConfigStore.diff(history[from_version], history[to_version])
    return ConfigDiffOut(
        service=service,
        from_version=from_version,
        to_version=to_version,
        changes={k: list(v) for k, v in changes.items()},
    )


@router.post(
    "/{service}",
    response_model=ConfigVersionOut,
    responses=errors(*BODY_ERRORS),
    summary="Change values (validated; becomes a new version)",
)
async def change(
    service: str,
    body: ConfigChangeIn,
    ctx: Ctx,
    who: Principal = Depends(require(Permission.ADMIN)),
) -> ConfigVersionOut:
    ctx.engine.change_config(
        service, ctx.now(), dict(body.values), author=who.name, reason=body.reason
    )
    ctx.audit.record(who.actor, "api.config.change", service, after=body.values, why=body.reason)
    return config_version_out(_current(ctx, service))


@router.post(
    "/{service}/rollback",
    response_model=ConfigVersionOut,
    responses=errors(*BODY_ERRORS),
    summary="Make an earlier version current again (as a new version)",
)
async def rollback(
    service: str,
    body: RollbackIn,
    ctx: Ctx,
    who: Principal = Depends(require(Permission.ADMIN)),
) -> ConfigVersionOut:
    before = _current(ctx, service).version
    ctx.engine.rollback_config(
        service, ctx.now(), body.to_version, author=who.name, reason=body.reason
    )
    after = _current(ctx, service)
    ctx.audit.record(
        who.actor,
        "api.config.rollback",
        service,
        before={"version": before},
        after={"version": after.version, "values_of": body.to_version},
        why=body.reason,
    )
    return config_version_out(after)


def _history(ctx: ServerContext, service: str) -> list[ConfigVersion]:
    history = ctx.store.config_history(service)
    if not history:
        raise NotFound(f"no configuration stored for service {service!r}")
    return history


def _current(ctx: ServerContext, service: str) -> ConfigVersion:
    store = ctx.engine.config_stores.get(service)
    if store is None:
        raise NotFound(f"no configuration store for service {service!r}")
    return store.current
