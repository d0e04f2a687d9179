"""Action kinds and the action state machine."""

from __future__ import annotations

import itertools

import pytest

from stanch.core.actions import (
    ACTION_TRANSITIONS,
    ACTIVE_STATES,
    OPEN_STATES,
    ActionKind,
    ActionState,
)
from stanch.core.errors import IllegalTransition

from .factories import make_action

TERMINAL = {s for s, tos in ACTION_TRANSITIONS.items() if not tos}
EDGES = [(a, b) for a, b in itertools.product(ActionState, ActionState)]


def test_every_state_has_a_row() -> None:
    """The table covers every state, and the terminal ones are the five endings."""
    assert set(ACTION_TRANSITIONS) == set(ActionState)
    assert {
        ActionState.LIFTED,
        ActionState.EXPIRED,
        ActionState.REVERTED,
        ActionState.REJECTED,
        ActionState.FAILED,
    } == TERMINAL


@pytest.mark.parametrize(("frm", "to"), EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_to_follows_the_table(frm: ActionState, to: ActionState) -> None:
    """to() takes exactly the table's edges and raises IllegalTransition on every other one."""
    action = make_action(state=frm, applied_at=None)
    if to in ACTION_TRANSITIONS[frm]:
        moved = action.to(to, 50.0)
        assert moved.state is to
        assert action.state is frm  # values are immutable: the original is untouched
        assert (moved.ended_at == 50.0) == (to in TERMINAL)
        if to not in TERMINAL:
            assert moved.ended_at is None
    else:
        with pytest.raises(IllegalTransition, match=f"{frm} -> {to}"):
            action.to(to, 50.0)


def test_applied_sets_applied_at_once() -> None:
    """The first APPLIED records applied_at; a relapse back to APPLIED keeps the original."""
    action = make_action(state=ActionState.APPROVED, applied_at=None)
    applied = action.to(ActionState.APPLIED, 10.0)
    assert applied.applied_at == 10.0
    lifting = applied.to(ActionState.LIFTING, 20.0)
    relapsed = lifting.to(ActionState.APPLIED, 30.0)
    assert relapsed.applied_at == 10.0
    assert relapsed.ended_at is None


def test_to_accepts_extra_changes_and_explicit_ended_at() -> None:
    """Keyword changes are applied along with the move; an explicit ended_at wins."""
    action = make_action(state=ActionState.PENDING, applied_at=None)
    approved = action.to(ActionState.APPROVED, 5.0, decided_by="alice")
    assert approved.decided_by == "alice"
    rejected = action.to(ActionState.REJECTED, 6.0, ended_at=7.0, reason="no")
    assert (rejected.ended_at, rejected.reason) == (7.0, "no")


def test_active_and_open_sets() -> None:
    """Active is in force (applied, lifting); open also includes pending and approved."""
    assert {ActionState.APPLIED, ActionState.LIFTING} == ACTIVE_STATES
    assert ACTIVE_STATES | {ActionState.PENDING, ActionState.APPROVED} == OPEN_STATES
    for state in ActionState:
        action = make_action(state=state)
        assert action.is_active == (state in ACTIVE_STATES)
        assert action.is_open == (state in OPEN_STATES)
        assert action.is_open != (state in TERMINAL)


def test_expires_at_counts_from_application() -> None:
    """The TTL runs from applied_at, or from creation while not yet applied."""
    assert make_action(created_at=5.0, applied_at=20.0, ttl_s=60.0).expires_at() == 80.0
    assert make_action(created_at=5.0, applied_at=None, ttl_s=60.0).expires_at() == 65.0
    assert make_action(created_at=5.0, applied_at=0.0, ttl_s=60.0).expires_at() == 60.0


@pytest.mark.parametrize(
    ("kind", "phase", "client"),
    [
        (ActionKind.CIRCUIT_BREAK, "isolate", False),
        (ActionKind.DISABLE_ROUTE, "isolate", False),
        (ActionKind.BLOCK_CLIENT, "isolate", True),
        (ActionKind.THROTTLE_ROUTE, "mitigate", False),
        (ActionKind.THROTTLE_CLIENT, "mitigate", True),
        (ActionKind.SHED_LOAD, "mitigate", False),
        (ActionKind.ROLLBACK_CONFIG, "mitigate", False),
    ],
)
def test_kind_phase_and_target(kind: ActionKind, phase: str, client: bool) -> None:
    """Each kind belongs to the isolate or mitigate phase and targets a client or not."""
    assert kind.phase == phase
    assert kind.targets_client is client
