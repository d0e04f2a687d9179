"""Response models: what the API answers, documented in the OpenAPI schema.

Built from the core's objects by the ``*_out`` functions, never by hand in handlers. Numbers
the core may hold as NaN or infinity (a detector with no data) are ``null`` here, and typed
as such, so every answer matches its schema.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stanch.core.actions import Action
from stanch.core.alerts import Alert
from stanch.core.audit import AuditEntry, Problem
from stanch.core.config import ConfigVersion
from stanch.core.incidents import Incident, TimelineEntry
from stanch.core.noise import Ended, MaintenanceWindow, Matcher, Silence, Suppression
from stanch.store import StoredToken


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class ErrorOut(BaseModel):
    detail: str


class HealthOut(BaseModel):
    status: str
    version: str


class AcceptedOut(BaseModel):
    accepted: int = Field(description="Events taken (all of the batch)")


class AlertOut(BaseModel):
    fingerprint: str
    kind: str
    service: str
    route: str
    signal: str
    severity: str
    status: str
    source: str
    explanation: str
    started_at: float | None
    updated_at: float | None
    ended_at: float | None
    observed: float | None
    expected: float | None
    score: float | None
    clients: list[str]
    labels: dict[str, str]


class TimelineOut(BaseModel):
    ts: float | None
    kind: str
    actor: str
    text: str
    data: dict[str, Any]


class ImpactOut(BaseModel):
    requests: int
    failed: int
    protected: int
    clients_seen: int
    clients_failed: int


class IncidentSummaryOut(BaseModel):
    id: str
    service: str
    title: str
    state: str
    severity: str
    opened_at: float | None
    onset: float | None
    routes: list[str]
    acknowledged_by: str
    impact: ImpactOut


class ActionOut(BaseModel):
    id: str
    incident_id: str
    kind: str
    mode: str
    state: str
    service: str
    target: str
    rule: str
    reason: str
    created_at: float | None
    ttl_s: float | None
    verify_within_s: float | None
    applied_at: float | None
    ended_at: float | None
    decided_by: str
    stage: int
    verified: bool | None
    params: dict[str, Any]


class IncidentOut(IncidentSummaryOut):
    clients: list[str]
    resolution: str
    entered: dict[str, float]
    alerts: list[AlertOut]
    suspects: list[dict[str, Any]]
    timeline: list[TimelineOut]
    actions: list[ActionOut]


class PostmortemOut(BaseModel):
    incident_id: str
    markdown: str
    document: dict[str, Any]
    saved: bool = Field(description="False when drafted on demand (the incident is open)")


class RuleOut(BaseModel):
    name: str
    description: str
    kinds: list[str]
    actions: list[str] = Field(description='"kind (mode)" per action')
    stop: bool


class RunbookOut(BaseModel):
    source: str
    text: str
    updated_at: float | None
    updated_by: str
    rules: list[RuleOut]


class RunbookCheckOut(BaseModel):
    valid: bool
    problems: list[str] = Field(description="file:line: field: message, one per problem")
    rules: int


class RunbookRejectedOut(BaseModel):
    detail: str
    problems: list[str] = Field(default_factory=list, description="One per problem, by line")


class ConfigVersionOut(BaseModel):
    version: int
    ts: float | None
    author: str
    reason: str
    values: dict[str, Any]
    changed: dict[str, list[Any]] = Field(description="key -> [before, after]")


class ConfigDiffOut(BaseModel):
    service: str
    from_version: int
    to_version: int
    changes: dict[str, list[Any]] = Field(description="key -> [value in from, value in to]")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built straight from StoredToken
    id: str
    name: str
    role: str
    created_at: float
    created_by: str
    revoked_at: float | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret token; shown once, never stored")


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built straight from AuditEntry
    seq: int
    ts: float
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    why: str
    prev_hash: str
    hash: str


class ProblemOut(BaseModel):
    seq: int
    kind: str
    message: str


class AuditVerifyOut(BaseModel):
    entries: int
    intact: bool
    head_seq: int | None
    head_hash: str | None
    problems: list[ProblemOut]


class AlertmanagerOut(BaseModel):
    accepted: int = Field(description="Alerts taken from this snapshot")
    duplicates: int = Field(description="Alerts already taken from an earlier delivery")
    incidents: list[str]


class PagerDutyOut(BaseModel):
    status: str
    message: str
    dedup_key: str | None = None


class PagerDutyErrorOut(BaseModel):
    status: str
    message: str
    errors: list[str]
    detail: str


class ReportOut(BaseModel):
    fingerprint: str
    reports: int
    reporters: int
    severity: str
    incident: str | None


class ChangeOut(BaseModel):
    id: str
    service: str
    kind: str
    ts: float


class MatcherOut(BaseModel):
    field: str = Field(description="service, route, kind, client, source or label:NAME")
    op: str = Field(description='"=" (the glob matches) or "!=" (it does not)')
    pattern: str = Field(description="A case-sensitive glob: * any run, ? one character")


class SilenceOut(BaseModel):
    id: str
    matchers: list[MatcherOut]
    starts_at: float
    ends_at: float = Field(description="As planned; ended_at says when an expired one ended")
    created_by: str
    comment: str
    status: str = Field(description="pending, active or expired")
    ended_at: float | None = None
    ended_by: str | None = Field(None, description='Who expired it ("" when it ran out)')


class SilenceCreatedOut(SilenceOut):
    warnings: list[str] = Field(
        default_factory=list,
        description="Why it may mute nothing, e.g. it matches no series seen so far "
        "(it is created all the same: a route may not have had traffic yet)",
    )


class MaintenanceOut(BaseModel):
    id: str
    service: str
    routes: list[str] = Field(description="Route globs covered (none: the whole service)")
    weekly: bool
    starts_at: float | None = Field(description="One-off windows only")
    ends_at: float | None = Field(description="One-off windows only")
    weekdays: list[int] = Field(description="Weekly windows: 0 = Monday .. 6 = Sunday (UTC)")
    start_minute: int | None = Field(description="Weekly windows: minute of the day, UTC")
    end_minute: int | None = Field(description="Weekly windows: before start = next day")
    schedule: str = Field(description='Weekly windows, readable: "Mon 02:00-04:00 UTC"')
    created_by: str
    comment: str
    status: str = Field(description="pending, active or expired")
    ended_at: float | None = None
    ended_by: str | None = None


class MaintenanceCreatedOut(MaintenanceOut):
    warnings: list[str] = Field(
        default_factory=list,
        description="Why it may cover nothing, e.g. its service or a route glob matches no "
        "series seen so far (it is created all the same)",
    )


class SuppressionOut(BaseModel):
    at: float
    fingerprint: str
    kind: str
    service: str
    route: str
    reason: str
    rule: str = Field(description="The silence, window, or inhibiting alert's fingerprint")
    cause: str = Field(description="silence, maintenance or inhibition")
    held: bool = Field(description="Still held back now (it pages if its reason ends)")


# -- builders -------------------------------------------------------------------------------


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut(
        fingerprint=alert.fingerprint,
        kind=alert.kind.value,
        service=alert.service,
        route=alert.route,
        signal=alert.signal,
        severity=alert.severity.value,
        status=alert.status.value,
        source=alert.source,
        explanation=alert.explanation,
        started_at=_num(alert.started_at),
        updated_at=_num(alert.updated_at),
        ended_at=_num(alert.ended_at),
        observed=_num(alert.observed),
        expected=_num(alert.expected),
        score=_num(alert.score),
        clients=list(alert.clients),
        labels=dict(alert.labels),
    )


def timeline_out(entry: TimelineEntry) -> TimelineOut:
    return TimelineOut(
        ts=_num(entry.ts), kind=entry.kind, actor=entry.actor, text=entry.text, data=entry.data
    )


def summary_fields(incident: Incident) -> dict[str, Any]:
    impact = incident.impact
    return {
        "id": incident.id,
        "service": incident.service,
        "title": incident.title,
        "state": incident.state.value,
        "severity": incident.severity.value,
        "opened_at": _num(incident.opened_at),
        "onset": _num(incident.onset),
        "routes": sorted(incident.routes),
        "acknowledged_by": incident.acknowledged_by,
        "impact": ImpactOut(
            requests=impact.requests,
            failed=impact.failed,
            protected=impact.protected,
            clients_seen=len(impact.clients_seen),
            clients_failed=len(impact.clients_failed),
        ),
    }


def incident_summary_out(incident: Incident) -> IncidentSummaryOut:
    return IncidentSummaryOut(**summary_fields(incident))


def incident_out(incident: Incident, actions: list[Action]) -> IncidentOut:
    return IncidentOut(
        **summary_fields(incident),
        clients=sorted(incident.clients),
        resolution=incident.resolution,
        entered={k: v for k, v in incident.entered.items() if math.isfinite(v)},
        alerts=[alert_out(a) for a in incident.alerts.values()],
        suspects=list(incident.suspects),
        timeline=[timeline_out(e) for e in incident.timeline],
        actions=[action_out(a) for a in actions],
    )


def action_out(action: Action) -> ActionOut:
    return ActionOut(
        id=action.id,
        incident_id=action.incident_id,
        kind=action.kind.value,
        mode=action.mode.value,
        state=action.state.value,
        service=action.service,
        target=action.target,
        rule=action.rule,
        reason=action.reason,
        created_at=_num(action.created_at),
        ttl_s=_num(action.ttl_s),
        verify_within_s=_num(action.verify_within_s),
        applied_at=_num(action.applied_at),
        ended_at=_num(action.ended_at),
        decided_by=action.decided_by,
        stage=action.stage,
        verified=action.verified,
        params=dict(action.params),
    )


def config_version_out(version: ConfigVersion) -> ConfigVersionOut:
    return ConfigVersionOut(
        version=version.version,
        ts=_num(version.ts),
        author=version.author,
        reason=version.reason,
        values=dict(version.values),
        changed={k: list(v) for k, v in version.changed.items()},
    )


def token_out(token: StoredToken) -> TokenOut:
    return TokenOut.model_validate(token)  # the secret's hash has no field here: never leaves


def audit_entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut.model_validate(entry)


def problem_out(problem: Problem) -> ProblemOut:
    return ProblemOut(seq=problem.seq, kind=problem.kind.value, message=problem.message)


def matcher_out(matcher: Matcher) -> MatcherOut:
    return MatcherOut(field=matcher.field, op=matcher.op, pattern=matcher.pattern)


def silence_out(silence: Silence, now: float, ended: Ended | None = None) -> SilenceOut:
    return SilenceOut(
        id=silence.id,
        matchers=[matcher_out(m) for m in silence.matchers],
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        created_by=silence.created_by,
        comment=silence.comment,
        status="expired" if ended else silence.status(now),
        ended_at=ended.at if ended else None,
        ended_by=ended.by if ended else None,
    )


def maintenance_out(
    window: MaintenanceWindow, now: float, ended: Ended | None = None
) -> MaintenanceOut:
    return MaintenanceOut(
        id=window.id,
        service=window.service,
        routes=list(window.routes),
        weekly=window.weekly,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        weekdays=sorted(set(window.weekdays)),
        start_minute=window.start_minute if window.weekly else None,
        end_minute=window.end_minute if window.weekly else None,
        schedule=window.schedule(),
        created_by=window.created_by,
        comment=window.comment,
        status="expired" if ended else window.status(now),
        ended_at=ended.at if ended else None,
        ended_by=ended.by if ended else None,
    )


def suppression_out(suppression: Suppression, held: bool) -> SuppressionOut:
    return SuppressionOut(
        at=suppression.at,
        fingerprint=suppression.fingerprint,
        kind=suppression.kind,
        service=suppression.service,
        route=suppression.route,
        reason=suppression.reason,
        rule=suppression.rule,
        cause=suppression.cause,
        held=held,
    )
