"""Noise control on a running server: silences, maintenance windows, and what they held back.

A responder mutes a known problem (a load test, a migration) for a while instead of
acknowledging the same page over and over; the shape follows Alertmanager's silences
(matchers, start, end, creator, a required comment) in Stanch's own terms: matchers are
globs on an alert's service, route, kind, client, source or labels, ``=`` or ``!=``; routes
are named with their method (``route=POST /checkout``, ``route=GET /api/*``, ``route=* /checkout``
for any method), so a path alone (``route=/checkout``) is refused, as is a ``kind`` glob that
names no alert kind. A rule that matches no series the engine has seen is created all the
same (a route may have had no traffic yet), with a warning in the answer. Every
creation and expiry is in the audit trail under the caller's name, and the engine records
each alert it holds back there too, so "why did this not page?" has an answer after a
restart. Rules take effect at the engine's next step.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StringConstraints

from stanch.core.durations import parse_duration
from stanch.core.errors import ValidationError
from stanch.core.noise import (
    MAX_COMMENT,
    MAX_ENDED,
    MAX_MATCHERS,
    MAX_PATTERN,
    MaintenanceWindow,
    Matcher,
    Silence,
    resolve_span,
)
from stanch.server import noise_rules
from stanch.server.api.common import BODY_ERRORS, Ctx, Name, errors
from stanch.server.api.schemas import (
    MaintenanceCreatedOut,
    MaintenanceOut,
    SilenceCreatedOut,
    SilenceOut,
    SuppressionOut,
    maintenance_out,
    silence_out,
    suppression_out,
)
from stanch.server.auth import Permission, Principal, require

router = APIRouter(tags=["noise control"], responses=errors(401, 403))

Glob = Annotated[str, StringConstraints(max_length=MAX_PATTERN)]
Comment = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_COMMENT)
]
Duration = (
    Annotated[str, StringConstraints(min_length=1, max_length=40)] | Annotated[float, Field(gt=0)]
)
_DURATION_DOC = 'How long from the start: "2h", "90m", "1h30m" or seconds (instead of ends_at)'


class MatcherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="service, route, kind, client, source or label:NAME"
    )
    op: Literal["=", "!="] = Field("=", description='"!=" matches alerts the glob does not')
    pattern: Glob = Field(
        description="A case-sensitive glob: * any run, ? one character. Routes include the "
        'method: "POST /checkout", "GET /api/*", "* /checkout"; kinds are alert kinds '
        '("error_burst", "traffic_*")'
    )


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: list[MatcherIn] = Field(
        min_length=1,
        max_length=MAX_MATCHERS,
        description="All must match; at least one must be a positive glob other than '*'",
    )
    starts_at: FiniteFloat | None = Field(
        None, description="Unix seconds; default (and at the earliest) now"
    )
    ends_at: FiniteFloat | None = Field(None, description="Unix seconds (or give duration)")
    duration: Duration | None = Field(None, description=_DURATION_DOC)
    comment: Comment = Field(description="Why: shown with every alert it holds back")


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: Name
    routes: list[Glob] = Field(
        default_factory=list,
        max_length=MAX_MATCHERS,
        description='Route globs with the method ("POST /pay*", "* /checkout"); none: all',
    )
    starts_at: FiniteFloat | None = Field(None, description="One-off: Unix seconds, default now")
    ends_at: FiniteFloat | None = Field(None, description="One-off: Unix seconds (or duration)")
    duration: Duration | None = Field(None, description=_DURATION_DOC)
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=list, max_length=7, description="Weekly: 0 = Monday .. 6 = Sunday (UTC)"
    )
    start_minute: int | None = Field(None, ge=0, le=1439, description="Weekly: minute of day")
    end_minute: int | None = Field(
        None, ge=0, le=1439, description="Weekly: before start = the next day"
    )
    comment: Comment


# -- silences -------------------------------------------------------------------------------


@router.get("/silences", response_model=list[SilenceOut], summary="Silences in force")
async def list_silences(
    ctx: Ctx,
    expired: bool = Query(False, description=f"Also the last {MAX_ENDED} that ended"),
    _: Any = Depends(require(Permission.READ)),
) -> list[SilenceOut]:
    now = ctx.now()
    noise = ctx.engine.noise
    silences, _ = noise.listed(now, expired=expired)
    found = [silence_out(s, now) for s in silences]
    if expired:
        found += [
            silence_out(e.rule, now, e)
            for e in reversed(noise.ended)
            if isinstance(e.rule, Silence)
        ]
    return found


@router.post(
    "/silences",
    status_code=201,
    response_model=SilenceCreatedOut,
    responses=errors(409, *BODY_ERRORS),
    summary="Mute matching alerts for a while (they are still recorded, with the reason)",
)
async def create_silence(
    body: SilenceIn, ctx: Ctx, who: Principal = Depends(require(Permission.RESPOND))
) -> SilenceCreatedOut:
    now = ctx.now()
    starts_at, ends_at = resolve_span(now, body.starts_at, body.ends_at, _seconds(body.duration))
    silence = noise_rules.create_silence(
        ctx,
        who,
        [Matcher(m.field, m.pattern, m.op == "=") for m in body.matchers],
        starts_at=starts_at,
        ends_at=ends_at,
        comment=body.comment,
        via="api",
    )
    warnings = noise_rules.series_warnings(ctx, silence)
    return SilenceCreatedOut(**silence_out(silence, now).model_dump(), warnings=warnings)


@router.delete(
    "/silences/{silence_id}",
    response_model=SilenceOut,
    responses=errors(404, 409),
    summary="Expire a silence now (what it holds pages at the next step if still firing)",
)
async def expire_silence(
    silence_id: str, ctx: Ctx, who: Principal = Depends(require(Permission.RESPOND))
) -> SilenceOut:
    ended = noise_rules.end_rule(ctx, who, "silences", silence_id, via="api")
    assert isinstance(ended.rule, Silence)
    return silence_out(ended.rule, ended.at, ended)


# -- maintenance windows --------------------------------------------------------------------


@router.get(
    "/maintenance", response_model=list[MaintenanceOut], summary="Maintenance windows in force"
)
async def list_maintenance(
    ctx: Ctx,
    expired: bool = Query(False, description=f"Also the last {MAX_ENDED} that ended"),
    _: Any = Depends(require(Permission.READ)),
) -> list[MaintenanceOut]:
    now = ctx.now()
    noise = ctx.engine.noise
    _, windows = noise.listed(now, expired=expired)
    found = [maintenance_out(w, now) for w in windows]
    if expired:
        found += [
            maintenance_out(e.rule, now, e)
            for e in reversed(noise.ended)
            if isinstance(e.rule, MaintenanceWindow)
        ]
    return found


@router.post(
    "/maintenance",
    status_code=201,
    response_model=MaintenanceCreatedOut,
    responses=errors(409, *BODY_ERRORS),
    summary="Plan work on a service: one-off (start, end) or weekly (weekdays, minutes)",
)
async def create_maintenance(
    body: MaintenanceIn, ctx: Ctx, who: Principal = Depends(require(Permission.RESPOND))
) -> MaintenanceCreatedOut:
    now = ctx.now()
    window = noise_rules.create_maintenance(ctx, who, _window(body, now, who.name), via="api")
    warnings = noise_rules.series_warnings(ctx, window)
    return MaintenanceCreatedOut(**maintenance_out(window, now).model_dump(), warnings=warnings)


@router.delete(
    "/maintenance/{window_id}",
    response_model=MaintenanceOut,
    responses=errors(404, 409),
    summary="End a maintenance window now (a weekly one for good)",
)
async def expire_maintenance(
    window_id: str, ctx: Ctx, who: Principal = Depends(require(Permission.RESPOND))
) -> MaintenanceOut:
    ended = noise_rules.end_rule(ctx, who, "maintenance", window_id, via="api")
    assert isinstance(ended.rule, MaintenanceWindow)
    return maintenance_out(ended.rule, ended.at, ended)


# -- what was held back ---------------------------------------------------------------------


@router.get(
    "/suppressed",
    response_model=list[SuppressionOut],
    summary="Alerts held back lately, newest first, with the reason (since this start; "
    "the audit trail keeps them all)",
)
async def list_suppressed(
    ctx: Ctx,
    limit: int = Query(100, ge=1, le=1000),
    service: Annotated[str | None, Query(max_length=200)] = None,
    cause: Literal["silence", "maintenance", "inhibition"] | None = None,
    _: Any = Depends(require(Permission.READ)),
) -> list[SuppressionOut]:
    engine = ctx.engine
    wanted = (
        s
        for s in reversed(engine.suppressed)
        if (service is None or s.service == service) and (cause is None or s.cause == cause)
    )
    return [suppression_out(s, engine.still_holds(s)) for s in islice(wanted, limit)]


def _seconds(duration: str | float | None) -> float | None:
    if duration is None:
        return None
    try:
        return parse_duration(duration)
    except ValueError as exc:
        raise ValidationError(f"duration: {exc}") from None


def _window(body: MaintenanceIn, now: float, created_by: str) -> MaintenanceWindow:
    """The window ``body`` describes: weekly when it names weekdays, else one-off."""
    if body.weekdays:
        if body.starts_at is not None or body.ends_at is not None or body.duration is not None:
            raise ValidationError(
                "a weekly window takes weekdays, start_minute and end_minute, not "
                "starts_at, ends_at or duration"
            )
        if body.start_minute is None or body.end_minute is None:
            raise ValidationError("a weekly window needs start_minute and end_minute")
        return MaintenanceWindow(
            "",
            body.service,
            tuple(body.routes),
            weekdays=tuple(sorted(set(body.weekdays))),
            start_minute=body.start_minute,
            end_minute=body.end_minute,
            comment=body.comment,
            created_by=created_by,
        )
    if body.start_minute is not None or body.end_minute is not None:
        raise ValidationError("start_minute and end_minute are for weekly windows (weekdays)")
    starts_at, ends_at = resolve_span(now, body.starts_at, body.ends_at, _seconds(body.duration))
    return MaintenanceWindow(
        "",
        body.service,
        tuple(body.routes),
        starts_at=starts_at,
        ends_at=ends_at,
        comment=body.comment,
        created_by=created_by,
    )
