"""The server-side buffer between agents' HTTP batches and the engine's step loop.

A batch is accepted whole or not at all: if it does not fit, the agent hears 503 (and
Retry-After) and keeps its events, instead of hearing 202 while the server drops them. So
nothing accepted is ever lost; ``refused`` counts the events turned away.

Each batch remembers its oldest timestamp, so the step loop can take in first just the
batches whose windows it is about to close (``drain(before=...)``) and leave the rest queued.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from stanch.buffer import RawEvent
from stanch.core.events import RequestEvent


class IngestQueue:
    """Batches of one service each, waiting for the step loop; bounded by event count."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        # (service, version, events, oldest timestamp)
        self._batches: deque[tuple[str, str, list[RawEvent], float]] = deque()
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
        oldest = min(events)[0] if events else math.inf  # tuples compare by ts first
        self._batches.append((service, version, events, oldest))
        self._size += len(events)
        self.accepted += len(events)
        return True

    def drain(self, limit: int | None = None, *, before: float | None = None) -> list[RequestEvent]:
        """Waiting events as request events, oldest batch first: all of them; or the first
        ``limit`` (a batch bigger than what is left of it is split); or, with ``before``,
        every batch holding an event older than ``before`` (the others stay queued)."""
        if before is not None:
            due = [b for b in self._batches if b[3] < before]
            if len(due) < len(self._batches):
                self._batches = deque(b for b in self._batches if b[3] >= before)
                self._size -= sum(len(b[2]) for b in due)
                return _events(due)
        if limit is None or limit >= self._size:
            batches, self._batches, self._size = self._batches, deque(), 0
            return _events(batches)
        taken = []
        while limit > 0:
            service, version, events, oldest = self._batches.popleft()
            if len(events) > limit:
                rest = events[limit:]
                # The whole batch's oldest: at worst the rest counts as due a turn early.
                self._batches.appendleft((service, version, rest, oldest))
                events = events[:limit]
            taken.append((service, version, events, oldest))
            self._size -= len(events)
            limit -= len(events)
        return _events(taken)


def _events(batches: Iterable[tuple[str, str, list[RawEvent], float]]) -> list[RequestEvent]:
    out: list[RequestEvent] = []
    for service, version, events, _ in batches:
        out.extend(
            RequestEvent(ts, service, method, route, status, latency, client, version, enf)
            for ts, method, route, status, latency, client, enf in events
        )
    return out
