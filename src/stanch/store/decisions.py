"""Human decisions on actions, queued for the engine.

A person approves, rejects or reverts from the CLI or the dashboard, possibly in another
process; the engine owns action state, so the decision waits in the store until the engine's
next step takes it and applies it through the action's transition table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stanch.core.actions import ActionState


class DecisionKind(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVERT = "revert"


# The action states in which each decision makes sense. The engine checks again against its
# live state when it takes the decision; this check is for the person typing the command.
DECISION_NEEDS: dict[DecisionKind, frozenset[ActionState]] = {
    DecisionKind.APPROVE: frozenset({ActionState.PENDING}),
    DecisionKind.REJECT: frozenset({ActionState.PENDING}),
    DecisionKind.REVERT: frozenset({ActionState.APPLIED, ActionState.LIFTING}),
}


@dataclass(frozen=True, slots=True)
class Decision:
    """A human's decision on an action, queued until the engine takes it."""

    id: int
    action_id: str
    decision: DecisionKind
    actor: str
    reason: str
    ts: float
