"""The incident: a state machine with a timeline, and the impact it has had so far.

States follow the loop (detected -> acknowledged -> isolated -> mitigated -> resolved -> closed)
in an explicit transition table; skipping ahead is allowed where reality does it (an automatic
breaker isolates before any human acknowledges), going back is allowed only to reopen a resolved
incident that recurs. Anything else raises :class:`IllegalTransition`. Every change leaves a
timeline entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from stanch.core.alerts import Alert
from stanch.core.errors import IllegalTransition
from stanch.core.severity import Severity


class IncidentState(StrEnum):
    DETECTED = "detected"
    ACKNOWLEDGED = "acknowledged"
    ISOLATED = "isolated"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


_S = IncidentState
INCIDENT_TRANSITIONS: dict[IncidentState, frozenset[IncidentState]] = {
    _S.DETECTED: frozenset({_S.ACKNOWLEDGED, _S.ISOLATED, _S.MITIGATED, _S.RESOLVED}),
    _S.ACKNOWLEDGED: frozenset({_S.ISOLATED, _S.MITIGATED, _S.RESOLVED}),
    _S.ISOLATED: frozenset({_S.MITIGATED, _S.RESOLVED}),
    _S.MITIGATED: frozenset({_S.RESOLVED}),
    _S.RESOLVED: frozenset({_S.CLOSED, _S.DETECTED}),
    _S.CLOSED: frozenset(),
}
OPEN_INCIDENT_STATES = frozenset({_S.DETECTED, _S.ACKNOWLEDGED, _S.ISOLATED, _S.MITIGATED})

MAX_TRACKED_CLIENTS = 10_000

KIND_TITLES = {
    "traffic_spike": "Traffic spike",
    "traffic_drop": "Traffic drop",
    "error_burst": "Error burst",
    "latency_spike": "Latency spike",
    "slo_burn": "SLO budget burn",
}


def alert_title(alert: Alert) -> str:
    """What an incident about ``alert`` is called: the trouble and where it is."""
    where = alert.route if alert.route != "*" else f"service {alert.service}"
    return f"{KIND_TITLES.get(alert.kind.value, alert.kind.value)} on {where}"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    ts: float
    kind: str
    text: str
    actor: str = "stanch"
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(slots=True)
class Impact:
    """Requests on the affected components since the incident opened."""

    requests: int = 0
    failed: int = 0
    protected: int = 0
    clients_seen: set[str] = field(default_factory=set)
    clients_failed: set[str] = field(default_factory=set)

    @property
    def users_affected_share(self) -> float:
        return len(self.clients_failed) / len(self.clients_seen) if self.clients_seen else 0.0

    def add(self, requests: int, failed: int, protected: int) -> None:
        self.requests += requests
        self.failed += failed
        self.protected += protected

    def see_client(self, client: str, failed: bool) -> None:
        if len(self.clients_seen) < MAX_TRACKED_CLIENTS:
            self.clients_seen.add(client)
        if failed and len(self.clients_failed) < MAX_TRACKED_CLIENTS:
            self.clients_failed.add(client)


@dataclass(slots=True)
class Incident:
    """One incident. Mutable on purpose: it is the aggregate the engine updates and persists."""

    id: str
    service: str
    title: str
    severity: Severity
    opened_at: float
    state: IncidentState = IncidentState.DETECTED
    routes: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    alerts: dict[str, Alert] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    entered: dict[str, float] = field(default_factory=dict)
    impact: Impact = field(default_factory=Impact)
    suspects: list[dict[str, Any]] = field(default_factory=list)
    onset: float = 0.0
    healthy_since: float | None = None
    reopens: int = 0
    acknowledged_by: str = ""
    resolution: str = ""
    comments: list[TimelineEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.entered.setdefault(self.state.value, self.opened_at)
        if not self.onset:
            self.onset = self.opened_at

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_INCIDENT_STATES

    @property
    def firing_alerts(self) -> list[Alert]:
        return [a for a in self.alerts.values() if a.is_firing]

    def note(self, now: float, kind: str, text: str, actor: str = "stanch", **data: Any) -> None:
        self.timeline.append(TimelineEntry(now, kind, text, actor, data))

    def can(self, to: IncidentState) -> bool:
        return to in INCIDENT_TRANSITIONS[self.state]

    def transition(
        self, to: IncidentState, now: float, actor: str = "stanch", why: str = ""
    ) -> None:
        if to not in INCIDENT_TRANSITIONS[self.state]:
            raise IllegalTransition(f"incident {self.id}: {self.state} -> {to} is not allowed")
        before = self.state
        self.state = to
        if to is IncidentState.DETECTED:  # reopened: the clock of every later stage restarts
            self.reopens += 1
            for later in (_S.ACKNOWLEDGED, _S.ISOLATED, _S.MITIGATED, _S.RESOLVED):
                self.entered.pop(later.value, None)
        self.entered.setdefault(to.value, now)
        text = f"{before} → {to}" + (f": {why}" if why else "")
        self.note(now, "state", text, actor, before=before.value, after=to.value)

    def advance_to(
        self, to: IncidentState, now: float, actor: str = "stanch", why: str = ""
    ) -> bool:
        """Move forward to ``to`` if the table allows it; quietly stay put if already past it."""
        if self.state is to or not self.can(to):
            return False
        self.transition(to, now, actor, why)
        return True

    def acknowledge(self, now: float, actor: str) -> None:
        """A human took ownership. Past DETECTED this is a fact on the timeline, not a state."""
        if not self.is_open:
            raise IllegalTransition(f"incident {self.id} is {self.state}: nothing to acknowledge")
        self.acknowledged_by = self.acknowledged_by or actor
        if self.state is IncidentState.DETECTED:
            self.transition(IncidentState.ACKNOWLEDGED, now, actor)
        else:
            self.entered.setdefault(IncidentState.ACKNOWLEDGED.value, now)
            self.note(now, "acknowledged", f"acknowledged by {actor}", actor)

    def reopen(self, alert: Alert, now: float) -> None:
        """A resolved incident whose ``alert`` fires again: detected again, the alert's
        return on the timeline.

        The title follows what reopened it: an incident titled "Error burst on POST /pay"
        that comes back as a latency spike on GET /ping is paged, listed and notified as the
        latency spike, which is what the responder now has to look at. The old title stays
        on the timeline (a ``title`` entry, before and after), so the history still reads
        as one story."""
        self.transition(IncidentState.DETECTED, now, why=f"recurred: {alert_title(alert)}")
        title = alert_title(alert)
        if title != self.title:
            self.note(
                now,
                "title",
                f"retitled after what reopened it: {self.title} → {title}",
                before=self.title,
                after=title,
            )
            self.title = title
        self.add_alert(alert, now)

    def add_alert(self, alert: Alert, now: float) -> None:
        """Take ``alert`` in: a new one, or one that fired again after clearing, is on the
        timeline (an ``alert`` or ``alert_returned`` entry with its explanation); an update
        of one still firing is not."""
        known = self.alerts.get(alert.fingerprint)
        is_new = known is None
        returned = known is not None and not known.is_firing and alert.is_firing
        self.alerts[alert.fingerprint] = alert
        if alert.route != "*":
            self.routes.add(alert.route)
        self.clients.update(alert.clients)
        self.onset = min(self.onset, alert.started_at)
        if alert.severity > self.severity:
            before = self.severity
            self.severity = alert.severity
            self.note(
                now,
                "severity",
                f"severity {before} → {alert.severity}",
                before=before.value,
                after=alert.severity.value,
            )
        if is_new or returned:
            self.note(
                now,
                "alert" if is_new else "alert_returned",
                alert.explanation if is_new else f"back: {alert.explanation}",
                fingerprint=alert.fingerprint,
                alert_kind=alert.kind.value,
                route=alert.route,
            )

    def time_to(self, state: IncidentState) -> float | None:
        """Seconds from onset to first entering ``state`` (None if it never did)."""
        at = self.entered.get(state.value)
        return None if at is None else max(0.0, at - self.onset)
