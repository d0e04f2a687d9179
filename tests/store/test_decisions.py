"""The decision queue: a CLI queues approve/reject/revert, the engine takes each exactly once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from stanch.core.actions import ActionState
from stanch.core.errors import NotFound, ValidationError
from stanch.store import Decision, DecisionKind, Store

from . import samples

OpenStore = Callable[[], Store]


def test_queued_decision_is_taken_once(store: Store) -> None:
    """A queued approve is returned by the next take, and by no later one."""
    store.save_action(samples.action())
    queued = store.queue_decision("ACT-0001", "approve", "alice", "looks right", 1010.0)
    assert queued == Decision(
        queued.id, "ACT-0001", DecisionKind.APPROVE, "alice", "looks right", 1010.0
    )
    assert store.take_decisions() == [queued]
    assert store.take_decisions() == []


def test_decisions_are_taken_oldest_first(store: Store) -> None:
    """Decisions on several actions come back in the order they were queued."""
    store.save_action(samples.action("ACT-0002"))
    store.save_action(samples.action("ACT-0001"))
    store.save_action(samples.action("ACT-0003", state=ActionState.APPLIED))
    store.queue_decision("ACT-0002", "reject", "bob", "too broad", 3.0)
    store.queue_decision("ACT-0001", "approve", "alice", "", 1.0)
    store.queue_decision("ACT-0003", DecisionKind.REVERT, "carol", "recovered", 2.0)
    taken = store.take_decisions()
    assert [(d.action_id, d.decision) for d in taken] == [
        ("ACT-0002", "reject"),
        ("ACT-0001", "approve"),
        ("ACT-0003", "revert"),
    ]


def test_decision_on_an_unknown_action_is_not_found(store: Store) -> None:
    """Deciding on an action id the store does not know raises NotFound, naming the id."""
    with pytest.raises(NotFound, match="action ACT-0404 does not exist"):
        store.queue_decision("ACT-0404", "approve", "alice", "", 1.0)


def test_unknown_decision_is_refused(store: Store) -> None:
    """A decision other than approve, reject or revert is a ValidationError listing the three."""
    store.save_action(samples.action())
    with pytest.raises(ValidationError, match=r"unknown decision 'yolo'.*approve, reject, revert"):
        store.queue_decision("ACT-0001", "yolo", "alice", "", 1.0)


@pytest.mark.parametrize(
    ("state", "decision", "message"),
    [
        (ActionState.APPLIED, "approve", "cannot approve action ACT-0001: it is applied"),
        (ActionState.REJECTED, "reject", "cannot reject action ACT-0001: it is rejected"),
        (ActionState.PENDING, "revert", "revert needs it applied or lifting"),
        (ActionState.LIFTED, "revert", "cannot revert action ACT-0001: it is lifted"),
    ],
)
def test_decision_the_state_does_not_allow_is_refused(
    store: Store, state: ActionState, decision: str, message: str
) -> None:
    """approve/reject need a pending action and revert an applied or lifting one."""
    store.save_action(samples.action(state=state))
    with pytest.raises(ValidationError, match=message):
        store.queue_decision("ACT-0001", decision, "alice", "", 1.0)
    assert store.take_decisions() == []


@pytest.mark.parametrize("state", [ActionState.APPLIED, ActionState.LIFTING])
def test_revert_is_allowed_while_in_force(store: Store, state: ActionState) -> None:
    """A revert is queued for an action that is applied or being lifted."""
    store.save_action(samples.action(state=state))
    store.queue_decision("ACT-0001", "revert", "alice", "false positive", 1.0)
    assert [d.decision for d in store.take_decisions()] == ["revert"]


def test_second_decision_waits_for_the_first_to_be_taken(store: Store) -> None:
    """While one decision on an action waits, another is refused; once taken, it is allowed."""
    store.save_action(samples.action())
    store.queue_decision("ACT-0001", "approve", "alice", "", 1.0)
    with pytest.raises(ValidationError, match="already has a approve by alice waiting"):
        store.queue_decision("ACT-0001", "reject", "bob", "", 2.0)
    store.take_decisions()
    store.queue_decision("ACT-0001", "reject", "bob", "", 3.0)
    assert [d.actor for d in store.take_decisions()] == ["bob"]


def test_cli_queues_in_one_store_and_engine_takes_in_another(open_store: OpenStore) -> None:
    """A decision queued through one store (the CLI process) is taken through another (engine)."""
    engine_side, cli_side = open_store(), open_store()
    engine_side.save_action(samples.action())
    cli_side.queue_decision("ACT-0001", "approve", "alice", "", 1.0)
    assert [d.action_id for d in engine_side.take_decisions()] == ["ACT-0001"]
    assert cli_side.take_decisions() == []


def test_concurrent_takers_never_share_a_decision(open_store: OpenStore) -> None:
    """Many takers polling at once (two engine replicas) get each decision exactly once."""
    stores = [open_store(), open_store()]
    for n in range(30):
        stores[0].save_action(samples.action(f"ACT-{n:04d}"))
        stores[0].queue_decision(f"ACT-{n:04d}", "approve", "alice", "", float(n))
    with ThreadPoolExecutor(max_workers=6) as pool:
        batches = list(pool.map(lambda i: stores[i % 2].take_decisions(), range(12)))
    taken = [d.action_id for batch in batches for d in batch]
    assert sorted(taken) == [f"ACT-{n:04d}" for n in range(30)]
