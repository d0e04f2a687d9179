"""Agents' endpoints: ship request events, pull the isolation policy.

``POST /api/v1/events`` (role agent or admin) takes a batch of one service::

    {"service": "shop", "version": "1.4.2",
     "events": [[ts, method, route_template, status, latency_s, client, enforced], ...]}

Each event is the tuple of :data:`stanch.buffer.RawEvent`: ``ts`` epoch seconds, ``method``
like ``"POST"``, ``route_template`` like ``"/checkout"`` (the template, never the raw path),
``status`` 100-599, ``latency_s`` seconds, ``client`` id (may be ``""``), ``enforced`` the
Stanch policy that answered instead of the app (``""`` when the app answered). The body may
be sent with ``Content-Encoding: gzip``. The batch is taken whole (202 ``{"accepted": n}``) or
refused whole: 422 names the index of each bad event (``["body", "events", 17, 3]``), and 503
with ``Retry-After`` means the server's buffer is full, so keep the batch and retry. Events
older than ``max_event_age_s`` (300 s) or more than ``max_event_ahead_s`` (60 s) ahead of the
server's clock are refused (422), as their time windows are closed or implausible.

``GET /api/v1/policy/{service}`` (agent, or any reading role) answers the service's
:class:`~stanch.core.policy.Policy` as JSON (``Policy.to_dict``; ``Policy.from_dict`` reads it
back) with ``ETag: "<version>"``. Send ``If-None-Match`` with the last ETag to get 304 when
nothing changed; add ``?wait=S`` (at most 30) to long-poll: the answer comes as soon as the
policy changes, or 304 when ``S`` seconds pass without a change. A service Stanch never acted
on has the empty policy, version 0.

Both endpoints take the agent's ``Stanch-Agent`` (instance id) and ``Stanch-Agent-Dropped``
(events it lost, cumulative) headers, so losses the server cannot see are still known
(``GET /api/v1/agents``, ``stanch_agent_events_dropped``; see :mod:`stanch.server.agents`).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from stanch.agent import AGENT_HEADER, DROPPED_HEADER
from stanch.buffer import RawEvent
from stanch.core.policy import Policy
from stanch.server.agents import AgentHeaderError, parse_headers
from stanch.server.api.common import BODY_ERRORS, Ctx, Name, errors
from stanch.server.api.schemas import AcceptedOut
from stanch.server.auth import Permission, require

MAX_BATCH = 100_000
MAX_WAIT_S = 30.0
MAX_SERVICE = 200  # longer service names are no service Stanch tracks (see Name)

router = APIRouter(tags=["agents"], responses=errors(401, 403))


async def _agent(
    instance: Annotated[
        str | None,
        Header(
            alias=AGENT_HEADER,
            description="The agent instance sending (1-64 characters of A-Z a-z 0-9 . _ -)",
        ),
    ] = None,
    dropped: Annotated[
        str | None,
        Header(
            alias=DROPPED_HEADER,
            description="Events this agent instance has lost since it started (cumulative)",
        ),
    ] = None,
) -> tuple[str, int | None] | None:
    """The agent instance and its loss count (see ``stanch.server.agents``); 400 if malformed."""
    try:
        return parse_headers(instance, dropped)
    except AgentHeaderError as exc:
        raise HTTPException(400, str(exc)) from None


AgentReport = Annotated[tuple[str, int | None] | None, Depends(_agent)]

_Method = Annotated[str, StringConstraints(min_length=1, max_length=16)]
_Route = Annotated[str, StringConstraints(min_length=1, max_length=500)]
_Ts = Annotated[float, Strict()]
_Status = Annotated[int, Strict(), Field(ge=100, le=599)]
_Latency = Annotated[float, Strict(), Field(ge=0, le=86_400)]
_Client = Annotated[str, StringConstraints(max_length=200)]
_Enforced = Annotated[str, StringConstraints(max_length=32)]
EventIn = tuple[_Ts, _Method, _Route, _Status, _Latency, _Client, _Enforced]


class EventBatch(BaseModel):
    """Request events of one service (see the module docstring for the tuple)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    service: Name
    version: Annotated[str, StringConstraints(max_length=200)] = ""
    events: list[EventIn] = Field(
        max_length=MAX_BATCH,
        description="[ts, method, route_template, status, latency_s, client, enforced]",
    )


class BreakerOut(BaseModel):
    action_id: str
    start_open: bool
    open_for_s: float
    probes: int
    failure_ratio: float
    min_calls: int


class RateOut(BaseModel):
    action_id: str
    rate: float
    burst: int


class RouteRuleOut(BaseModel):
    route: str
    incident_id: str
    breaker: BreakerOut | None
    disabled_status: int | None
    disabled_body: str
    throttle: RateOut | None
    shed_fraction: float


class ClientRuleOut(BaseModel):
    client: str
    incident_id: str
    blocked_status: int | None
    throttle: RateOut | None
    route: str | None


class PolicyOut(BaseModel):
    """``Policy.to_dict()``: what enforcement points must do now."""

    service: str
    version: int
    routes: dict[str, RouteRuleOut]
    clients: dict[str, ClientRuleOut]


@router.post(
    "/events",
    status_code=202,
    response_model=AcceptedOut,
    responses=errors(*BODY_ERRORS, 503),
    summary="Ship a batch of request events",
    # The body is read by hand (see _batch), so FastAPI documents neither it nor its 422.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventBatch.model_json_schema()}},
        },
        "responses": {
            "422": {
                "description": "Validation Error",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                    }
                },
            }
        },
    },
)
async def post_events(
    request: Request,
    ctx: Ctx,
    _: Annotated[Any, Depends(require(Permission.INGEST))],
    agent: AgentReport,  # after the credentials: a stranger hears 401, not what headers it sent
) -> Any:
    """Take a batch of one service's request events, whole or not at all.

    Each event is ``[ts, method, route_template, status, latency_s, client, enforced]``
    (``stanch.buffer.RawEvent``). ``Content-Encoding: gzip`` is accepted. 422 names the index
    of each bad event (``["body", "events", i, field]``), including timestamps outside the
    server's window (300 s back, 60 s ahead); 503 with ``Retry-After`` means the buffer is
    full: keep the batch and retry.
    """
    batch = _batch(request.headers.get("content-type"), await request.body())
    if agent is not None:
        ctx.agents.heard(batch.service, *agent, ctx.clock())
    now = ctx.now()
    oldest = now - ctx.settings.max_event_age_s
    newest = now + ctx.settings.max_event_ahead_s
    problems = []
    for i, event in enumerate(batch.events):
        ts = event[0]
        if not oldest <= ts <= newest:
            problems.append(
                {
                    "type": "value_error",
                    "loc": ("body", "events", i, 0),
                    "msg": f"timestamp {ts} is outside the accepted window "
                    f"[{oldest:.0f}, {newest:.0f}] of the server's clock",
                    "input": ts,
                }
            )
            if len(problems) >= 20:
                break
    if problems:
        raise RequestValidationError(problems)
    events: list[RawEvent] = list(batch.events)
    if not ctx.queue.offer(batch.service, batch.version, events):
        retry = max(1, math.ceil(ctx.settings.interval_s))
        return JSONResponse(
            {"detail": "ingest buffer full: keep the batch and retry"},
            status_code=503,
            headers={"Retry-After": str(retry)},
        )
    return AcceptedOut(accepted=len(events))


@router.get(
    "/policy/{service}",
    response_model=PolicyOut,
    responses={
        304: {"description": "Not modified: the policy is still the one in If-None-Match"},
        **errors(400),
    },
    summary="The isolation policy of a service (ETag, If-None-Match, long-poll)",
)
async def get_policy(
    service: str,
    request: Request,
    ctx: Ctx,
    _: Annotated[Any, Depends(require(Permission.POLICY))],
    agent: AgentReport,
    wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_S, description="Long-poll for up to S seconds"),
) -> Response:
    """The service's policy (``Policy.to_dict``) with ``ETag: "<version>"``.

    With ``If-None-Match`` naming the current version: 304 at once, or with ``wait=S`` as
    soon as the policy changes (200) or after S seconds (304). Unknown services have the
    empty policy, version 0.
    """

    if agent is not None and len(service) <= MAX_SERVICE:
        ctx.agents.heard(service, *agent, ctx.clock())

    def version() -> int:
        policy = ctx.engine.policies.get(service)
        return policy.version if policy else 0

    current = version()
    fresh = _matches(request.headers.get("if-none-match"), current)
    if fresh and (wait <= 0 or not await ctx.policy_watch.wait(version, current, wait)):
        return Response(status_code=304, headers={"ETag": _etag(current)})
    policy = ctx.engine.policies.get(service) or Policy(service)
    return JSONResponse(policy.to_dict(), headers={"ETag": _etag(policy.version)})


def _batch(content_type: str | None, body: bytes) -> EventBatch:
    """The batch, parsed and validated in one pass by pydantic-core's JSON parser: for 5,000
    events that is ~2.5 ms instead of ~14 ms for FastAPI's ``json.loads`` then validation, the
    largest cost of this endpoint (bench/ingest.py). A refused body takes the slow path, which
    answers exactly what FastAPI's own body handling would (the same 422s as every route)."""
    json_body = _is_json(content_type)
    if json_body:
        try:
            return EventBatch.model_validate_json(body)
        except PydanticValidationError:
            pass  # say why the way FastAPI does, below
    data: Any = body
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if json_body:
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ]
            ) from None
        except (ValueError, RecursionError):  # e.g. an integer past Python's digit limit
            raise HTTPException(400, "There was an error parsing the body") from None
    if not isinstance(data, dict):
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": data,
                }
            ]
        )
    try:
        return EventBatch.model_validate(data)
    except PydanticValidationError as exc:
        problems = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**p, "loc": ("body", *p["loc"])} for p in problems]
        ) from None


def _is_json(content_type: str | None) -> bool:
    """FastAPI's test: ``application/json`` or ``application/*+json`` (parameters ignored)."""
    if not content_type:
        return False
    kind, _, subtype = content_type.split(";")[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _etag(version: int) -> str:
    return f'"{version}"'


def _matches(header: str | None, version: int) -> bool:
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or _etag(version) in tags
