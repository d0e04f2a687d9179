"""People's reports and CI/CD's changes: the two feeds that are Stanch's own formats.

``POST /api/v1/reports`` (agent, responder or admin; or signed with the ``reports`` secret)
takes ``{service, text, route?, client?, reporter?}``. Reports about one service and route
add up to one user-report alert whose severity grows with the number of distinct reporters
(see :mod:`stanch.sources.reports`); it is correlated with other alerts like any alert.

``POST /api/v1/changes`` (agent or admin; or signed with the ``changes`` secret) records a
deploy, config or feature-flag change for root-cause ranking.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends

from stanch.server.api.common import BODY_ERRORS, Ctx, errors
from stanch.server.api.schemas import ChangeOut, ReportOut
from stanch.server.auth import Permission, Principal, require_webhook
from stanch.sources import changes, reports
from stanch.sources.changes import ChangeIn
from stanch.sources.reports import ReportIn

router = APIRouter(tags=["feeds"], responses=errors(401, 403, *BODY_ERRORS))


@router.post(
    "/reports",
    status_code=202,
    response_model=ReportOut,
    summary="A person reports something broken",
)
async def post_report(
    body: ReportIn,
    ctx: Ctx,
    principal: Principal = Depends(require_webhook("reports", Permission.REPORT)),
) -> ReportOut:
    now = ctx.now()
    report = reports.to_report(body, f"RPT-{uuid.uuid4().hex[:12]}", now)
    group = ctx.reports.add(report)
    alert = reports.alert(group, now)
    incident = ctx.engine.ingest_alert(alert, now)
    ctx.audit.record(
        principal.actor,
        "ingest.report",
        alert.fingerprint,
        after={
            "service": report.service,
            "route": group.route,
            "reporter": report.reporter or report.client,
            "reports": group.count,
            "incident": incident,
        },
        why=report.text,
    )
    ctx.changed()
    return ReportOut(
        fingerprint=alert.fingerprint,
        reports=group.count,
        reporters=len(group.reporters),
        severity=alert.severity.value,
        incident=incident,
    )


@router.post(
    "/changes",
    status_code=202,
    response_model=ChangeOut,
    summary="Record a deploy, config or feature-flag change",
)
async def post_change(
    body: ChangeIn,
    ctx: Ctx,
    principal: Principal = Depends(require_webhook("changes", Permission.INGEST)),
) -> Any:
    change = changes.to_change(body, ctx.now())
    ctx.engine.record_change(change)
    ctx.audit.record(
        principal.actor,
        "ingest.change",
        change.id,
        after={"service": change.service, "kind": change.kind.value, "version": change.version},
        why=change.summary,
    )
    return ChangeOut(id=change.id, service=change.service, kind=change.kind.value, ts=change.ts)
