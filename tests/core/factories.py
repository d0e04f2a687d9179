"""Small builders for core domain values, shared by the core tests (not a test module)."""

from __future__ import annotations

from typing import Any

from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.alerts import Alert, AlertKind, AlertStatus, fingerprint
from stanch.core.incidents import Incident
from stanch.core.series import SeriesKey
from stanch.core.severity import Severity
from stanch.core.windows import ClientStats, Point


def make_alert(
    kind: AlertKind = AlertKind.ERROR_BURST,
    *,
    service: str = "shop",
    route: str = "POST /checkout",
    severity: Severity = Severity.SEV2,
    started_at: float = 100.0,
    updated_at: float | None = None,
    clients: tuple[str, ...] = (),
    explanation: str = "error ratio 30.0% vs baseline 0.20%",
    fp: str | None = None,
    labels: dict[str, str] | None = None,
) -> Alert:
    return Alert(
        fingerprint=fp or fingerprint(service, route, kind.value),
        kind=kind,
        service=service,
        route=route,
        signal="errors",
        severity=severity,
        status=AlertStatus.FIRING,
        started_at=started_at,
        updated_at=started_at if updated_at is None else updated_at,
        observed=0.3,
        expected=0.002,
        score=0.9,
        explanation=explanation,
        clients=clients,
        labels=labels or {},
    )


def make_incident(
    incident_id: str = "INC-1",
    *,
    service: str = "shop",
    opened_at: float = 100.0,
    alerts: tuple[Alert, ...] = (),
    severity: Severity = Severity.SEV4,
    title: str = "checkout failing",
) -> Incident:
    incident = Incident(
        id=incident_id, service=service, title=title, severity=severity, opened_at=opened_at
    )
    for alert in alerts:
        incident.add_alert(alert, opened_at)
    return incident


def make_action(
    action_id: str = "A1",
    *,
    kind: ActionKind = ActionKind.CIRCUIT_BREAK,
    state: ActionState = ActionState.APPLIED,
    target: str = "POST /checkout",
    service: str = "shop",
    incident_id: str = "INC-1",
    mode: ActionMode = ActionMode.AUTO,
    created_at: float = 0.0,
    applied_at: float | None = 10.0,
    params: dict[str, Any] | None = None,
    stage: int = 0,
    stage_at: float | None = None,
    ttl_s: float = 1800.0,
    rule: str = "rule-1",
) -> Action:
    return Action(
        id=action_id,
        incident_id=incident_id,
        kind=kind,
        mode=mode,
        state=state,
        service=service,
        target=target,
        rule=rule,
        created_at=created_at,
        ttl_s=ttl_s,
        verify_within_s=120.0,
        params=params or {},
        applied_at=applied_at,
        stage=stage,
        stage_at=stage_at,
    )


def make_point(
    key: SeriesKey,
    t: float,
    requests: int,
    *,
    errors: int = 0,
    enforced: int = 0,
    p95: float = 0.1,
    interval: float = 1.0,
    clients: dict[str, ClientStats] | None = None,
) -> Point:
    """A closed window as the aggregator would emit it (latencies NaN when nothing was served)."""
    served = requests - enforced
    nan = float("nan")
    return Point(
        key=key,
        t=t,
        interval=interval,
        requests=requests,
        served=served,
        errors=errors,
        enforced=enforced,
        p50=p95 / 2 if served else nan,
        p95=p95 if served else nan,
        p99=p95 * 1.5 if served else nan,
        clients=clients or {},
    )
