"""Receivers for other tools: Alertmanager's webhook and a PagerDuty Events API v2 endpoint.

Both accept a bearer token (role agent or admin) or an HMAC signature of the raw body
(``X-Stanch-Signature: sha256=<hex>``, secret ``STANCH_WEBHOOK_SECRET_ALERTMANAGER`` /
``..._PAGERDUTY``); the PagerDuty endpoints also take a token as the event's ``routing_key``.

``POST /api/v1/alertmanager`` takes Alertmanager's payload version 4 (Grafana's too: unknown
fields are ignored). Each alert in the snapshot is taken once per (groupKey, fingerprint,
status, startsAt, endsAt), so an HA pair's duplicate deliveries and re-sent snapshots change
nothing; firing alerts fire (or update) an external alert, resolved ones resolve it. Point an
Alertmanager ``webhook_configs`` ``url`` here, with ``http_config.authorization`` holding a
token.

``POST /api/v1/pagerduty/v2/enqueue`` and ``.../v2/change/enqueue`` behave like PagerDuty's
own endpoints (same bodies, 202 answers, 400 ``invalid event``, 512 KB limit, dedup rules in
:mod:`stanch.sources.pagerduty`), so anything that can page PagerDuty can page Stanch.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from fastapi import APIRouter, Depends

from stanch.core.alerts import Alert
from stanch.core.errors import IllegalTransition
from stanch.server.api.common import Ctx, errors
from stanch.server.api.schemas import AlertmanagerOut, PagerDutyErrorOut, PagerDutyOut
from stanch.server.auth import Permission, Principal, require_webhook
from stanch.server.context import ServerContext
from stanch.sources import alertmanager, pagerduty
from stanch.sources.alertmanager import AlertmanagerPayload
from stanch.sources.pagerduty import PagerDutyChangeEvent, PagerDutyEvent

PAGERDUTY_PREFIX = "/api/v1/pagerduty/"
PD_SOURCE = "pagerduty"

router = APIRouter(tags=["webhooks"], responses=errors(401, 403, 413, 415))

_pd_errors: dict[int | str, dict[str, Any]] = {
    400: {"model": PagerDutyErrorOut, "description": "Invalid event (do not retry)"}
}


@router.post(
    "/alertmanager",
    response_model=AlertmanagerOut,
    responses=errors(400),
    summary="Alertmanager webhook (payload version 4)",
)
async def post_alertmanager(
    payload: AlertmanagerPayload,
    ctx: Ctx,
    principal: Principal = Depends(require_webhook("alertmanager", Permission.INGEST)),
) -> AlertmanagerOut:
    now = ctx.now()
    deliveries = alertmanager.normalize(payload, now)
    accepted = duplicates = 0
    incidents: list[str] = []
    for delivery in deliveries:
        if not ctx.store.claim_source_key(alertmanager.SOURCE, delivery.delivery_key, now):
            duplicates += 1
            continue
        accepted += 1
        alert = delivery.alert
        incident = ctx.engine.ingest_alert(alert, now)
        if incident and incident not in incidents:
            incidents.append(incident)
        ctx.audit.record(
            principal.actor,
            f"ingest.alertmanager.{alert.status.value}",
            alert.fingerprint,
            after=_alert_facts(alert, incident),
            why=alert.explanation,
        )
    ctx.changed()
    return AlertmanagerOut(accepted=accepted, duplicates=duplicates, incidents=incidents)


@router.post(
    "/pagerduty/v2/enqueue",
    status_code=202,
    response_model=PagerDutyOut,
    responses=_pd_errors,
    summary="PagerDuty Events API v2: trigger, acknowledge, resolve",
)
async def post_pagerduty_event(
    event: PagerDutyEvent,
    ctx: Ctx,
    principal: Principal = Depends(
        require_webhook(PD_SOURCE, Permission.INGEST, routing_key_token=True)
    ),
) -> PagerDutyOut:
    now = ctx.now()
    key = event.dedup_key or uuid.uuid4().hex
    state_key = pagerduty.state_key(event.routing_key, key)
    state = pagerduty.KeyState.from_doc(ctx.store.get_source_state(PD_SOURCE, state_key))
    outcome = pagerduty.decide(event, state, now, new_key=key)
    incident = _apply(ctx, outcome, principal, now)
    if outcome.state is not None:
        ctx.store.put_source_state(PD_SOURCE, state_key, outcome.state.to_doc(), now)
    if outcome.verb != "drop":
        ctx.audit.record(
            principal.actor,
            f"ingest.pagerduty.{event.event_action}",
            outcome.fingerprint,
            after={"dedup_key": key, "verb": outcome.verb, "incident": incident},
            why=outcome.alert.explanation if outcome.alert else "",
        )
    ctx.changed()
    return PagerDutyOut(status="success", message="Event processed", dedup_key=key)


@router.post(
    "/pagerduty/v2/change/enqueue",
    status_code=202,
    response_model=PagerDutyOut,
    responses=_pd_errors,
    summary="PagerDuty Events API v2: change events",
)
async def post_pagerduty_change(
    event: PagerDutyChangeEvent,
    ctx: Ctx,
    principal: Principal = Depends(
        require_webhook(PD_SOURCE, Permission.INGEST, routing_key_token=True)
    ),
) -> PagerDutyOut:
    change = pagerduty.change_event(event, ctx.now())
    ctx.engine.record_change(change)
    ctx.audit.record(
        principal.actor,
        "ingest.pagerduty.change",
        change.id,
        after={"service": change.service, "kind": change.kind.value},
        why=change.summary,
    )
    return PagerDutyOut(status="success", message="Change event processed")


def _apply(
    ctx: ServerContext, outcome: pagerduty.Outcome, principal: Principal, now: float
) -> str | None:
    engine = ctx.engine
    if outcome.verb in ("fire", "update") and outcome.alert is not None:
        return engine.ingest_alert(outcome.alert, now)
    holder = _holder(ctx, outcome.fingerprint)
    if holder is None:
        return None
    incident_id, known = holder
    if outcome.verb == "resolve" and known.is_firing:
        return engine.ingest_alert(known.resolve(now), now)
    if outcome.verb == "acknowledge":
        # An incident closed meanwhile: PagerDuty drops such acknowledgements too.
        with contextlib.suppress(IllegalTransition):
            engine.acknowledge(incident_id, actor=principal.name, now=now)
    return incident_id


def _holder(ctx: ServerContext, fingerprint: str) -> tuple[str, Alert] | None:
    """The open incident holding the alert ``fingerprint``, newest first."""
    for incident in sorted(ctx.engine.incidents.values(), key=lambda i: i.opened_at, reverse=True):
        alert = incident.alerts.get(fingerprint)
        if alert is not None and incident.is_open:
            return incident.id, alert
    return None


def _alert_facts(alert: Alert, incident: str | None) -> dict[str, Any]:
    return {
        "service": alert.service,
        "route": alert.route,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "incident": incident,
    }
