"""The hand-off between the request path and the engine: a bounded buffer and a policy holder.

Both are built so the request path never waits: ``EventBuffer.push`` is a length check and a list
append (a full buffer drops and counts, it never blocks), and the engine publishes a new policy
into the live :class:`Enforcer`, which swaps each of its rule tables in one assignment.
"""

from __future__ import annotations

from collections import deque

from stanch.core.enforcement import Enforcer
from stanch.core.events import RequestEvent
from stanch.core.policy import Policy

DEFAULT_CAPACITY = 200_000

RawEvent = tuple[float, str, str, int, float, str, str]
"""(ts, method, route template, status, latency_s, client, enforced) as pushed per request."""


class EventBuffer:
    """Request outcomes of one service, waiting for the engine (or an agent's shipper) to drain
    them. A deque, because appends and pops from the two ends are atomic: the request path may
    run in one thread and the drain in another (agent mode) without losing an event.
    """

    __slots__ = ("_items", "accepted", "capacity", "dropped", "service", "version")

    def __init__(self, service: str, *, version: str = "", capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.service = service
        self.version = version
        self.capacity = capacity
        self._items: deque[RawEvent] = deque()
        self.accepted = 0
        self.dropped = 0

    def push(self, item: RawEvent) -> None:
        if len(self._items) >= self.capacity:
            self.dropped += 1
            return
        self._items.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def drain_raw(self, limit: int | None = None) -> list[RawEvent]:
        """Take up to ``limit`` waiting events (all by default), oldest first."""
        items = self._items
        count = len(items) if limit is None else min(limit, len(items))
        popleft = items.popleft
        taken = [popleft() for _ in range(count)]
        self.accepted += count
        return taken

    def drain(self) -> list[RequestEvent]:
        items = self.drain_raw()
        service, version = self.service, self.version
        return [
            RequestEvent(ts, service, method, route, status, latency, client, version, enforced)
            for ts, method, route, status, latency, client, enforced in items
        ]


class PolicyHolder:
    """The current enforcer of one service; ``publish`` replaces it atomically."""

    __slots__ = ("enforcer", "service")

    def __init__(self, service: str, policy: Policy | None = None, now: float = 0.0) -> None:
        self.service = service
        self.enforcer = Enforcer(policy or Policy(service), now)

    def publish(self, policy: Policy, now: float) -> None:
        # Mutating the live enforcer (instead of building a new one) keeps breaker and limiter
        # state for unchanged rules; apply() assigns its dicts in one step each.
        self.enforcer.apply(policy, now)
