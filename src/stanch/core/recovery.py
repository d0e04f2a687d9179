"""Recovery: verify the signals stay healthy, then lift mitigations in stages, then resolve.

Lifting everything at once the moment a graph looks green is how incidents come back: a
throttled client's backlog floods in, a closed breaker meets a still-broken dependency. So once
the incident has had no firing alert for ``healthy_for_s``, each active action steps down one
stage per ``stage_interval_s`` (a breaker stops being forced open and probes in half-open; a
throttle doubles its rate; shedding halves) and is lifted after its last stage. An alert firing
again during lifting is a relapse: every lifting action goes back to full strength.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from stanch.core.actions import Action, ActionKind, ActionState


@dataclass(frozen=True, slots=True)
class RecoveryConfig:
    healthy_for_s: float = 60.0
    stage_interval_s: float = 20.0
    throttle_stages: int = 3
    shed_stages: int = 2


class StepKind(StrEnum):
    STAGE = "stage"  # step an action down one stage
    LIFT = "lift"  # release an action entirely
    RELAPSE = "relapse"  # back to full strength
    EXPIRE = "expire"  # a pending approval that is no longer needed
    RESOLVE = "resolve"  # the incident is over


@dataclass(frozen=True, slots=True)
class RecoveryStep:
    kind: StepKind
    action_id: str = ""
    stage: int = 0
    text: str = ""


def stages_for(action: Action, config: RecoveryConfig) -> int:
    """How many intermediate stages an action steps through before it is lifted."""
    if action.kind is ActionKind.CIRCUIT_BREAK:
        return 1  # stop forcing the breaker open: probes in half-open decide
    if action.kind in (ActionKind.THROTTLE_CLIENT, ActionKind.THROTTLE_ROUTE):
        return config.throttle_stages
    if action.kind is ActionKind.SHED_LOAD:
        return config.shed_stages
    return 0


def _describe(action: Action, stage: int) -> str:
    if action.kind is ActionKind.CIRCUIT_BREAK:
        return f"breaker on {action.target} no longer forced open: half-open probes decide"
    if action.kind in (ActionKind.THROTTLE_CLIENT, ActionKind.THROTTLE_ROUTE):
        ramp = float(action.params.get("ramp", 2.0))
        rate = float(action.params["rate"]) * ramp**stage
        return f"throttle on {action.target} ramped up to {rate:g} req/s (stage {stage})"
    if action.kind is ActionKind.SHED_LOAD:
        fraction = float(action.params["fraction"]) / 2**stage
        return f"load shedding on {action.target} reduced to {fraction:.0%} (stage {stage})"
    return f"{action.kind} on {action.target}: stage {stage}"


def _lifted(action: Action) -> str:
    if action.kind is ActionKind.ROLLBACK_CONFIG:
        return f"rollback of {action.target} kept: it is the fix; action closed"
    return f"{action.kind} on {action.target} lifted"


def plan_recovery(
    actions: Iterable[Action],
    *,
    healthy_since: float | None,
    now: float,
    config: RecoveryConfig,
    flaps: int = 0,
) -> list[RecoveryStep]:
    """The next steps for one incident, given its actions and how long it has been healthy.

    ``flaps`` counts how often the incident reopened: each doubles the healthy time required
    (up to 8x), so a flapping condition is held open instead of resolved and reopened again.
    """
    actions = list(actions)
    steps: list[RecoveryStep] = []
    if healthy_since is None:
        for action in actions:
            if action.state is ActionState.LIFTING:
                steps.append(
                    RecoveryStep(
                        StepKind.RELAPSE,
                        action.id,
                        0,
                        f"{action.kind} on {action.target} back to full strength",
                    )
                )
        return steps
    if now - healthy_since < config.healthy_for_s * 2 ** min(flaps, 3):
        return steps
    remaining = 0
    for action in actions:
        if action.state is ActionState.PENDING:
            steps.append(
                RecoveryStep(
                    StepKind.EXPIRE, action.id, 0, f"approval for {action.kind} no longer needed"
                )
            )
            continue
        if not action.is_active:
            if action.state is ActionState.APPROVED:
                remaining += 1
            continue
        total = stages_for(action, config)
        last = action.stage_at if action.stage_at is not None else action.applied_at
        if last is None:
            last = now
        if action.state is ActionState.APPLIED:
            if total == 0:
                steps.append(
                    RecoveryStep(
                        StepKind.LIFT, action.id, 0, f"{action.kind} on {action.target} lifted"
                    )
                )
            else:
                steps.append(RecoveryStep(StepKind.STAGE, action.id, 1, _describe(action, 1)))
                remaining += 1
        elif now - last >= config.stage_interval_s:
            if action.stage < total:
                nxt = action.stage + 1
                steps.append(RecoveryStep(StepKind.STAGE, action.id, nxt, _describe(action, nxt)))
                remaining += 1
            else:
                steps.append(
                    RecoveryStep(
                        StepKind.LIFT,
                        action.id,
                        action.stage,
                        f"{action.kind} on {action.target} lifted",
                    )
                )
        else:
            remaining += 1
    if remaining == 0:
        steps.append(RecoveryStep(StepKind.RESOLVE, text="recovery verified, mitigations lifted"))
    return steps
