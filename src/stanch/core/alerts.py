"""Alerts: what a detector (or an outside tool, or a person) says is wrong, with its evidence.

An alert is identified by a stable fingerprint, so the same condition seen again (the next
second, a re-sent webhook) updates one alert instead of opening another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum

from stanch.core.severity import Severity


class AlertKind(StrEnum):
    TRAFFIC_SPIKE = "traffic_spike"
    TRAFFIC_DROP = "traffic_drop"
    ERROR_BURST = "error_burst"
    LATENCY_SPIKE = "latency_spike"
    SLO_BURN = "slo_burn"
    EXTERNAL = "external"
    USER_REPORT = "user_report"
    LOG_TEMPLATE = "log_template"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
    SUPPRESSED = "suppressed"


def fingerprint(*parts: str) -> str:
    """A short stable hash of the parts that identify a condition (never of values or times)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True, slots=True)
class Alert:
    """One condition, firing or resolved.

    ``explanation`` says what was seen against what was expected; ``observed`` and ``expected``
    carry the numbers behind it. ``clients`` names the clients that explain the anomaly, most
    responsible first (the isolation step throttles or blocks from this list).
    """

    fingerprint: str
    kind: AlertKind
    service: str
    route: str
    signal: str
    severity: Severity
    status: AlertStatus
    started_at: float
    updated_at: float
    observed: float
    expected: float
    score: float
    explanation: str
    source: str = "detector"
    ended_at: float | None = None
    clients: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def resolve(self, now: float) -> Alert:
        return replace(self, status=AlertStatus.RESOLVED, ended_at=now, updated_at=now)

    @property
    def is_firing(self) -> bool:
        return self.status is AlertStatus.FIRING
