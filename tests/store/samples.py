"""Small, fully populated domain objects for the store tests (every optional field set)."""

from __future__ import annotations

from typing import Any

from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.config import ConfigVersion
from stanch.core.events import ChangeEvent, ChangeKind
from stanch.core.incidents import Incident, IncidentState, TimelineEntry
from stanch.core.severity import Severity


def alert(fp: str = "fp-checkout-errors", **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "fingerprint": fp,
        "kind": AlertKind.ERROR_BURST,
        "service": "shop",
        "route": "POST /checkout",
        "signal": "error_ratio",
        "severity": Severity.SEV2,
        "status": AlertStatus.FIRING,
        "started_at": 1000.25,
        "updated_at": 1003.5,
        "observed": 0.123,
        "expected": 0.004,
        "score": 9.1,
        "explanation": "error ratio 12.3% vs baseline 0.4%, z=9.1",
        "source": "detector",
        "ended_at": None,
        "clients": ("acme", "globex"),
        "labels": {"region": "eu"},
    }
    fields.update(changes)
    return Alert(**fields)


def incident(
    incident_id: str = "INC-0001", *, service: str = "shop", opened_at: float = 1001.0
) -> Incident:
    inc = Incident(
        id=incident_id,
        service=service,
        title="checkout failing",
        severity=Severity.SEV3,
        opened_at=opened_at,
    )
    inc.add_alert(alert(started_at=opened_at - 1.0), opened_at)
    inc.impact.add(120, 15, 4)
    inc.impact.see_client("acme", failed=True)
    inc.impact.see_client("globex", failed=False)
    inc.suspects.append({"kind": "config", "id": "config-v2", "score": 0.8, "why": ["near"]})
    inc.comments.append(TimelineEntry(opened_at + 2, "comment", "looking", "alice", {"n": 1}))
    inc.acknowledge(opened_at + 3, "alice")
    return inc


def action(
    action_id: str = "ACT-0001",
    *,
    incident_id: str = "INC-0001",
    state: ActionState = ActionState.PENDING,
    kind: ActionKind = ActionKind.THROTTLE_CLIENT,
    created_at: float = 1002.0,
    service: str = "shop",
) -> Action:
    return Action(
        id=action_id,
        incident_id=incident_id,
        kind=kind,
        mode=ActionMode.APPROVE,
        state=state,
        service=service,
        target="acme",
        rule="throttle-noisy-client",
        created_at=created_at,
        ttl_s=600.0,
        verify_within_s=60.0,
        params={"rate": 5.0, "burst": 10, "route": "POST /checkout"},
        reason="acme sends 80% of failing requests",
        applied_at=created_at + 1 if state is ActionState.APPLIED else None,
        decided_by="alice",
        stage=1,
        verified=None,
    )


def change(change_id: str = "deploy-42", ts: float = 990.0, service: str = "shop") -> ChangeEvent:
    return ChangeEvent(
        id=change_id,
        ts=ts,
        service=service,
        kind=ChangeKind.DEPLOY,
        summary="deploy v1.4.2",
        key="image",
        old_value="v1.4.1",
        new_value="v1.4.2",
        actor="ci",
        version="v1.4.2",
        routes=("POST /checkout",),
        details={"commit": "abc123"},
    )


def config_version(version: int = 2, ts: float = 995.0) -> ConfigVersion:
    return ConfigVersion(
        version=version,
        ts=ts,
        values={"pool_size": 4, "timeout_s": 1.5, "feature": True, "name": "x"},
        author="bob",
        reason="smaller pool",
        changed={"pool_size": (16, 4)},
    )


def resolved(inc: Incident, now: float) -> Incident:
    inc.transition(IncidentState.RESOLVED, now, "stanch", "recovered")
    return inc
