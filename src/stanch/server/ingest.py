"""The server-side buffer between agents' HTTP batches and the engine's step loop.

A batch is accepted whole or not at all: if it does not fit, the agent hears 503 (and
Retry-After) and keeps its events, instead of hearing 202 while the server drops them. So
nothing accepted is ever lost; ``refused`` counts the events turned away.
"""

from __future__ import annotations

from collections import deque

from stanch.buffer import RawEvent
from stanch.core.events import RequestEvent


class IngestQueue:
    """Batches of one service each, waiting for the step loop; bounded by event count."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._batches: deque[tuple[str, str, list[RawEvent]]] = deque()
        self._size = 0
        self.accepted = 0
        self.refused = 0

    def __len__(self) -> int:
        return self._size

    def offer(self, service: str, version: str, events: list[RawEvent]) -> bool:
        """Take the whole batch, or none of it (False) when it would not fit."""
        if self._size + len(events) > self.capacity:
            self.refused += len(events)
            return False
        self._batches.append((service, version, events))
        self._size += len(events)
        self.accepted += len(events)
        return True

    def drain(self, limit: int | None = None) -> list[RequestEvent]:
        """Everything waiting (or the oldest ``limit`` events), as request events, oldest
        batch first; a batch larger than what is left of ``limit`` is split."""
        out: list[RequestEvent] = []
        if limit is None or limit >= self._size:
            batches, self._batches, self._size = self._batches, deque(), 0
        else:
            batches = deque()
            while limit > 0:
                service, version, events = self._batches.popleft()
                if len(events) > limit:
                    self._batches.appendleft((service, version, events[limit:]))
                    events = events[:limit]
                batches.append((service, version, events))
                self._size -= len(events)
                limit -= len(events)
        for service, version, events in batches:
            out.extend(
                RequestEvent(ts, service, method, route, status, latency, client, version, enf)
                for ts, method, route, status, latency, client, enf in events
            )
        return out
