"""Isolation and mitigation actions: what Stanch does to contain an incident, and undoes after.

An action's life is an explicit transition table. ``approve`` actions start PENDING and wait for
a human; ``auto`` actions start APPROVED. The engine applies approved actions (they then shape
the :class:`~stanch.core.policy.Policy`), and lifts them when recovery is verified or their TTL
runs out. Every action knows its revert, so lifting is always possible.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from stanch.core.errors import IllegalTransition


class ActionKind(StrEnum):
    CIRCUIT_BREAK = "circuit_break"
    DISABLE_ROUTE = "disable_route"
    THROTTLE_ROUTE = "throttle_route"
    THROTTLE_CLIENT = "throttle_client"
    BLOCK_CLIENT = "block_client"
    SHED_LOAD = "shed_load"
    ROLLBACK_CONFIG = "rollback_config"

    @property
    def phase(self) -> str:
        """``isolate`` contains the blast radius; ``mitigate`` reduces or removes the cause."""
        return "isolate" if self in _ISOLATING else "mitigate"

    @property
    def targets_client(self) -> bool:
        return self in (ActionKind.THROTTLE_CLIENT, ActionKind.BLOCK_CLIENT)


_ISOLATING = frozenset(
    {ActionKind.CIRCUIT_BREAK, ActionKind.DISABLE_ROUTE, ActionKind.BLOCK_CLIENT}
)


class ActionMode(StrEnum):
    AUTO = "auto"
    APPROVE = "approve"


class ActionState(StrEnum):
    PENDING = "pending"  # waits for a human
    APPROVED = "approved"  # decided, not yet in force
    APPLIED = "applied"  # in force
    LIFTING = "lifting"  # being released in stages
    LIFTED = "lifted"  # released after verified recovery
    EXPIRED = "expired"  # released because its TTL ran out
    REVERTED = "reverted"  # released by a human
    REJECTED = "rejected"  # a human said no
    FAILED = "failed"  # could not be applied


ACTION_TRANSITIONS: dict[ActionState, frozenset[ActionState]] = {
    ActionState.PENDING: frozenset(
        {ActionState.APPROVED, ActionState.REJECTED, ActionState.EXPIRED}
    ),
    ActionState.APPROVED: frozenset({ActionState.APPLIED, ActionState.FAILED}),
    ActionState.APPLIED: frozenset(
        {ActionState.LIFTING, ActionState.LIFTED, ActionState.EXPIRED, ActionState.REVERTED}
    ),
    ActionState.LIFTING: frozenset(
        {ActionState.APPLIED, ActionState.LIFTED, ActionState.EXPIRED, ActionState.REVERTED}
    ),
    ActionState.LIFTED: frozenset(),
    ActionState.EXPIRED: frozenset(),
    ActionState.REVERTED: frozenset(),
    ActionState.REJECTED: frozenset(),
    ActionState.FAILED: frozenset(),
}

ACTIVE_STATES = frozenset({ActionState.APPLIED, ActionState.LIFTING})
OPEN_STATES = frozenset({ActionState.PENDING, ActionState.APPROVED, *ACTIVE_STATES})


@dataclass(frozen=True, slots=True)
class Action:
    """One action for one incident on one target.

    ``target`` is a route key (``"POST /checkout"``), a client id, or a configuration key,
    depending on ``kind``. ``params`` holds the knobs (rate, burst, open_for, fraction, status,
    body, version...); ``stage`` counts staged-lifting steps taken, the last at ``stage_at``;
    ``verified`` says whether the signal recovered within ``verify_within_s`` (None: not yet
    judged).
    """

    id: str
    incident_id: str
    kind: ActionKind
    mode: ActionMode
    state: ActionState
    service: str
    target: str
    rule: str
    created_at: float
    ttl_s: float
    verify_within_s: float
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    reason: str = ""
    applied_at: float | None = None
    ended_at: float | None = None
    decided_by: str = ""
    stage: int = 0
    stage_at: float | None = None
    verified: bool | None = None

    def to(self, state: ActionState, now: float, **changes: Any) -> Action:
        """This action moved to ``state`` at ``now``; raises on an edge the table lacks."""
        if state not in ACTION_TRANSITIONS[self.state]:
            raise IllegalTransition(f"action {self.id}: {self.state} -> {state} is not allowed")
        if state is ActionState.APPLIED and self.applied_at is None:
            changes.setdefault("applied_at", now)
        if not ACTION_TRANSITIONS[state]:
            changes.setdefault("ended_at", now)
        return replace(self, state=state, **changes)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def expires_at(self) -> float:
        start = self.applied_at if self.applied_at is not None else self.created_at
        return start + self.ttl_s
