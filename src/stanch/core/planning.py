"""From a firing alert to concrete actions: the runbook says *what*, the evidence says *on what*.

A runbook rule rarely names its target: "throttle the client that floods" or "roll back the
change that broke it" only make sense once an alert has found that client or RCA that change.
This module resolves each matched action to a target (or explains why it cannot) and refuses
duplicates, so re-fired alerts never stack the same action twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.alerts import Alert
from stanch.core.events import ChangeEvent, ChangeKind
from stanch.core.incidents import Incident
from stanch.core.runbook import ActionSpec, Rule, Runbook
from stanch.core.series import SERVICE_WIDE


@dataclass(frozen=True, slots=True)
class Skipped:
    rule: str
    kind: ActionKind
    reason: str


def _target(
    spec: ActionSpec, alert: Alert, incident: Incident, changes: dict[str, ChangeEvent]
) -> tuple[str, dict[str, object]] | str:
    """(target, extra params), or the reason no target can be chosen."""
    if spec.target:
        return spec.target, {}
    kind = spec.kind
    if kind.targets_client:
        if not alert.clients:
            return "no client explains this alert"
        return alert.clients[0], {}
    if kind is ActionKind.ROLLBACK_CONFIG:
        floor = float(spec.params.get("min_confidence", 0.3))
        for suspect in incident.suspects:
            change = changes.get(str(suspect.get("ref", "")))
            if suspect.get("kind") != "change" or change is None:
                continue
            if change.kind is not ChangeKind.CONFIG or not change.version:
                continue
            if float(suspect.get("confidence", 0.0)) < floor:
                return (
                    f"top config suspect {change.id} has confidence "
                    f"{float(suspect.get('confidence', 0.0)):.0%} < {floor:.0%}"
                )
            return change.key, {"version": int(change.version), "change_id": change.id}
        return "no configuration change among the suspects"
    if alert.route == SERVICE_WIDE:
        return "a service-wide alert names no route to act on"
    return alert.route, {}


def plan_actions(
    alert: Alert,
    incident: Incident,
    runbook: Runbook,
    existing: Iterable[Action],
    changes: dict[str, ChangeEvent],
    *,
    now: float,
    new_id: Callable[[], str],
) -> tuple[list[Action], list[Skipped]]:
    """Actions the runbook asks for on ``alert``, minus those already open on the same target."""
    taken = {(a.kind, a.target) for a in existing if a.incident_id == incident.id and a.is_open}
    planned: list[Action] = []
    skipped: list[Skipped] = []
    matches: list[tuple[Rule, ActionSpec]] = runbook.actions_for(alert)
    for rule, spec in matches:
        resolved = _target(spec, alert, incident, changes)
        if isinstance(resolved, str):
            skipped.append(Skipped(rule.name, spec.kind, resolved))
            continue
        target, extra = resolved
        if (spec.kind, target) in taken:
            continue
        taken.add((spec.kind, target))
        state = ActionState.APPROVED if spec.mode is ActionMode.AUTO else ActionState.PENDING
        planned.append(
            Action(
                id=new_id(),
                incident_id=incident.id,
                kind=spec.kind,
                mode=spec.mode,
                state=state,
                service=alert.service,
                target=target,
                rule=rule.name,
                created_at=now,
                ttl_s=spec.ttl_s,
                verify_within_s=spec.verify_within_s,
                params={**spec.params, **extra},
                reason=alert.explanation,
                decided_by="runbook" if spec.mode is ActionMode.AUTO else "",
            )
        )
    return planned, skipped
