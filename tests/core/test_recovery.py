"""plan_recovery: verify health, lift in stages, resolve when nothing remains."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stanch.core.actions import Action, ActionKind, ActionState
from stanch.core.recovery import (
    RecoveryConfig,
    RecoveryStep,
    StepKind,
    plan_recovery,
    stages_for,
)

from .factories import make_action

CFG = RecoveryConfig(healthy_for_s=60.0, stage_interval_s=20.0, throttle_stages=3, shed_stages=2)


def steps(actions: list[Action], healthy_since: float | None, now: float) -> list[RecoveryStep]:
    return plan_recovery(actions, healthy_since=healthy_since, now=now, config=CFG)


def kinds(result: list[RecoveryStep]) -> list[tuple[StepKind, str, int]]:
    return [(s.kind, s.action_id, s.stage) for s in result]


def throttle(**changes: object) -> Action:
    base = make_action(
        "T1", kind=ActionKind.THROTTLE_CLIENT, target="bot", params={"rate": 5.0, "ramp": 2.0}
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_nothing_happens_before_healthy_for() -> None:
    """Until the incident has been healthy for healthy_for_s no step is taken, not even RESOLVE."""
    actions = [make_action(), make_action("P", state=ActionState.PENDING, applied_at=None)]
    assert steps(actions, healthy_since=100.0, now=159.9) == []
    assert steps([], healthy_since=100.0, now=159.9) == []


def test_resolve_when_nothing_remains() -> None:
    """Healthy long enough with no actions at all: the incident resolves."""
    result = steps([], healthy_since=100.0, now=160.0)
    assert kinds(result) == [(StepKind.RESOLVE, "", 0)]


def test_breaker_steps_to_half_open_then_lifts() -> None:
    """A breaker takes one stage (stop forcing open), then is lifted a stage interval later."""
    breaker = make_action("B1")
    assert stages_for(breaker, CFG) == 1
    first = steps([breaker], healthy_since=0.0, now=100.0)
    assert kinds(first) == [(StepKind.STAGE, "B1", 1)]
    assert "half-open" in first[0].text
    staged = replace(breaker, state=ActionState.LIFTING, stage=1, stage_at=100.0)
    assert kinds(steps([staged], 0.0, 119.0)) == []  # waits for the stage interval
    last = steps([staged], 0.0, 120.0)
    assert kinds(last) == [(StepKind.LIFT, "B1", 1), (StepKind.RESOLVE, "", 0)]


def test_throttle_ramps_through_its_stages() -> None:
    """A throttle doubles its rate per stage and is lifted after the last one."""
    action = throttle()
    assert stages_for(action, CFG) == 3
    first = steps([action], 0.0, 100.0)
    assert kinds(first) == [(StepKind.STAGE, "T1", 1)]
    assert "10 req/s" in first[0].text
    now = 100.0
    for stage in (1, 2):
        action = replace(action, state=ActionState.LIFTING, stage=stage, stage_at=now)
        now += CFG.stage_interval_s
        result = steps([action], 0.0, now)
        assert kinds(result) == [(StepKind.STAGE, "T1", stage + 1)]
        assert f"{5.0 * 2 ** (stage + 1):g} req/s" in result[0].text
    action = replace(action, state=ActionState.LIFTING, stage=3, stage_at=now)
    assert kinds(steps([action], 0.0, now + 20.0))[0] == (StepKind.LIFT, "T1", 3)


def test_shed_halves_per_stage() -> None:
    """Shedding halves its fraction at each stage, shed_stages times."""
    shed = make_action("S1", kind=ActionKind.SHED_LOAD, params={"fraction": 0.4})
    assert stages_for(shed, CFG) == 2
    assert "20%" in steps([shed], 0.0, 100.0)[0].text
    staged = replace(shed, state=ActionState.LIFTING, stage=1, stage_at=100.0)
    result = steps([staged], 0.0, 120.0)
    assert kinds(result) == [(StepKind.STAGE, "S1", 2)]
    assert "10%" in result[0].text


@pytest.mark.parametrize(
    "kind", [ActionKind.DISABLE_ROUTE, ActionKind.BLOCK_CLIENT, ActionKind.ROLLBACK_CONFIG]
)
def test_unstaged_kinds_lift_at_once(kind: ActionKind) -> None:
    """Kinds without stages are lifted as soon as recovery is verified."""
    action = make_action("X", kind=kind)
    assert stages_for(action, CFG) == 0
    result = steps([action], 0.0, 60.0)
    assert kinds(result) == [(StepKind.LIFT, "X", 0), (StepKind.RESOLVE, "", 0)]


def test_no_resolve_while_a_stage_is_in_progress() -> None:
    """While any action is still stepping down, the incident is not resolved."""
    actions = [throttle(), make_action("D", kind=ActionKind.DISABLE_ROUTE)]
    result = steps(actions, 0.0, 100.0)
    assert StepKind.RESOLVE not in {s.kind for s in result}
    assert kinds(result) == [(StepKind.STAGE, "T1", 1), (StepKind.LIFT, "D", 0)]
    waiting = throttle(state=ActionState.LIFTING, stage=1, stage_at=95.0)
    assert kinds(steps([waiting], 0.0, 100.0)) == []


def test_relapse_restores_lifting_actions() -> None:
    """When health is lost again, every lifting action goes back to full strength."""
    lifting = throttle(state=ActionState.LIFTING, stage=2, stage_at=50.0)
    applied = make_action("B1")
    result = steps([lifting, applied], healthy_since=None, now=60.0)
    assert kinds(result) == [(StepKind.RELAPSE, "T1", 0)]
    assert "full strength" in result[0].text


def test_unhealthy_without_lifting_actions_does_nothing() -> None:
    """Not healthy and nothing lifting: no step at all."""
    assert steps([make_action(), throttle()], healthy_since=None, now=1e6) == []


def test_pending_approvals_expire_once_healthy() -> None:
    """A pending approval is no longer needed after verified recovery; it does not block RESOLVE."""
    pending = make_action("P", state=ActionState.PENDING, applied_at=None)
    result = steps([pending], 0.0, 60.0)
    assert kinds(result) == [(StepKind.EXPIRE, "P", 0), (StepKind.RESOLVE, "", 0)]


def test_approved_but_unapplied_action_blocks_resolve() -> None:
    """An approved action not yet in force still remains: no RESOLVE."""
    approved = make_action("A", state=ActionState.APPROVED, applied_at=None)
    assert steps([approved], 0.0, 60.0) == []


def test_finished_actions_are_ignored() -> None:
    """Lifted, expired, reverted, rejected and failed actions need nothing and block nothing."""
    done = [
        make_action(f"X{i}", state=state)
        for i, state in enumerate(
            [
                ActionState.LIFTED,
                ActionState.EXPIRED,
                ActionState.REVERTED,
                ActionState.REJECTED,
                ActionState.FAILED,
            ]
        )
    ]
    assert kinds(steps(done, 0.0, 60.0)) == [(StepKind.RESOLVE, "", 0)]


def test_lifting_action_applied_at_time_zero_progresses() -> None:
    """A lifting action without stage_at counts its stage interval from applied_at, even 0.0."""
    action = throttle(state=ActionState.LIFTING, stage=1, stage_at=None, applied_at=0.0)
    assert kinds(steps([action], 0.0, 100.0)) == [(StepKind.STAGE, "T1", 2)]


def test_lifting_action_without_stage_at_counts_from_applied_at() -> None:
    """With a non-zero applied_at and no stage_at, the interval runs from applied_at."""
    action = throttle(state=ActionState.LIFTING, stage=1, stage_at=None, applied_at=5.0)
    assert kinds(steps([action], 0.0, 100.0)) == [(StepKind.STAGE, "T1", 2)]
