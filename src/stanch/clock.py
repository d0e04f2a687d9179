"""Clocks: the one place Stanch reads time, so everything else can take it as an argument.

``WallClock`` is the real thing. ``SimClock`` is driven by a simulation: the traffic generator sets
the time of each request, and the demo app "spends" its simulated latency with ``sleep``, so half
an hour of traffic runs in seconds and replays the same way every time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (really, or in simulation)."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimClock:
    """A clock that only moves when told to. Not thread-safe: one simulation drives it."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)
