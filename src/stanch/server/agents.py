"""What the server knows of the agents that ship to it: who is there, and what they lost.

An agent loses events the server never sees (its request buffer full, a batch too old to send
after an outage, a batch refused for good). Without a report those losses look like traffic
that did not happen: the server could page a "traffic drop" and nobody would know the data was
incomplete. So every agent request (event batches and policy polls) carries two headers::

    Stanch-Agent: <instance id>          # random per agent process, [A-Za-z0-9._-]{1,64}
    Stanch-Agent-Dropped: <n>            # events this instance has lost since it started

The count is cumulative, so a lost or reordered request loses nothing and counts nothing
twice: the registry adds the increase over the highest count the instance reported (a lower one
is an older request arriving late: the shipper and the policy poller send concurrently). So an
id must name one process lifetime: the agent's default (host, pid, random) does.

Per service the registry keeps a monotonic total (a Prometheus counter,
``stanch_agent_events_dropped``), when the last loss was reported, and which instances were
heard from lately (``stanch_agents``). Memory is bounded: at most ``max_agents`` instances (the
least recently heard from is forgotten first) and ``max_services`` services.

Time is an argument (``now``): the registry does no I/O and reads no clock.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stanch.agent import AGENT_HEADER, DROPPED_HEADER

ACTIVE_S = 60.0  # an instance heard from within this long counts as connected
MAX_DROPPED = 10**15  # more than any agent can lose; larger values are refused as malformed
_AGENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class AgentHeaderError(ValueError):
    """A malformed ``Stanch-Agent`` or ``Stanch-Agent-Dropped`` header (answered with 400)."""


@dataclass(slots=True)
class AgentSeen:
    """One agent instance: when it was last heard from and the loss count it last reported."""

    service: str
    agent: str
    last_seen: float
    dropped: int


@dataclass(slots=True)
class ServiceAgents:
    """One service's agents, as a total over its instances."""

    service: str
    dropped: int = 0  # monotonic: the sum of every increase any instance reported
    # Server time of the last report that added losses: when the server *learned* of them (an
    # instance heard for the first time, e.g. after a server restart, reports its whole count).
    last_drop_at: float | None = None
    instances: dict[str, AgentSeen] = field(default_factory=dict)

    def active(self, now: float, within_s: float = ACTIVE_S) -> int:
        return sum(1 for a in self.instances.values() if now - a.last_seen <= within_s)


def parse_headers(agent: str | None, dropped: str | None) -> tuple[str, int | None] | None:
    """The (instance id, loss count) an agent request carries; None when it carries neither.

    Raises :class:`AgentHeaderError` for a malformed value: an agent that sends a broken count
    must hear so, not have its losses silently ignored.
    """
    if agent is None:
        if dropped is not None:
            raise AgentHeaderError(f"{DROPPED_HEADER} needs {AGENT_HEADER} (the instance id)")
        return None
    if not _AGENT_ID.fullmatch(agent):
        raise AgentHeaderError(f"{AGENT_HEADER} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if dropped is None:
        return agent, None
    text = dropped.strip()
    if not text.isdigit() or len(text) > 16 or int(text) > MAX_DROPPED:
        raise AgentHeaderError(f"{DROPPED_HEADER} must be a whole number of events (0 or more)")
    return agent, int(text)


class AgentRegistry:
    """Bounded record of agent instances per service (see the module docstring)."""

    def __init__(self, *, max_agents: int = 10_000, max_services: int = 1_000) -> None:
        if max_agents < 1 or max_services < 1:
            raise ValueError("max_agents and max_services must be at least 1")
        self.max_agents = max_agents
        self.max_services = max_services
        self._services: dict[str, ServiceAgents] = {}
        self._recent: OrderedDict[tuple[str, str], AgentSeen] = OrderedDict()  # oldest first
        self.refused_services = 0  # reports about a service past ``max_services``

    def heard(self, service: str, agent: str, dropped: int | None, now: float) -> None:
        """Record a request from ``agent`` of ``service`` carrying its loss count (if any)."""
        entry = self._services.get(service)
        if entry is None:
            if len(self._services) >= self.max_services:
                self.refused_services += 1
                return
            entry = self._services[service] = ServiceAgents(service)
        key = (service, agent)
        seen = self._recent.get(key)
        if seen is None:
            seen = AgentSeen(service, agent, now, 0)
            self._recent[key] = seen
            entry.instances[agent] = seen
            self._forget_oldest()
        else:
            self._recent.move_to_end(key)
        seen.last_seen = max(seen.last_seen, now)
        if dropped is None:
            return
        if dropped > seen.dropped:  # a lower count is an older request arriving late
            entry.dropped += dropped - seen.dropped
            entry.last_drop_at = now
            seen.dropped = dropped

    def _forget_oldest(self) -> None:
        while len(self._recent) > self.max_agents:
            (service, agent), _ = self._recent.popitem(last=False)
            self._services[service].instances.pop(agent, None)

    def services(self) -> list[ServiceAgents]:
        """Every service an agent reported for, by name."""
        return [self._services[name] for name in sorted(self._services)]

    def get(self, service: str) -> ServiceAgents | None:
        return self._services.get(service)


class AgentCollector:
    """``stanch_agent_events_dropped`` and ``stanch_agents`` per service, read at scrape time."""

    def __init__(self, registry: AgentRegistry, clock: Callable[[], float]) -> None:
        self.registry = registry
        self.clock = clock

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        dropped, active = self._families()
        now = self.clock()
        for entry in self.registry.services():
            dropped.add_metric([entry.service], entry.dropped)
            active.add_metric([entry.service], entry.active(now))
        yield dropped
        yield active

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                "stanch_agent_events_dropped",
                "Request events agents lost before the server saw them (their reports)",
                labels=["service"],
            ),
            GaugeMetricFamily(
                "stanch_agents",
                f"Agent instances heard from in the last {ACTIVE_S:g} s",
                labels=["service"],
            ),
        )
