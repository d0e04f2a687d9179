"""Alertmanager's webhook (payload version 4, and Grafana's alike) into external alerts.

Each POST is a snapshot of one alert group, not a delta, and an HA pair of Alertmanagers sends
every notification at least once from each member. So each alert in a snapshot carries a
``delivery_key``: a hash of (groupKey, fingerprint, status, startsAt, endsAt). The receiver
takes an alert only the first time it sees that key, which makes the webhook idempotent.

Normalization (see the reference table of formats):

=============  ====================================================================
fingerprint    ``fingerprint("alertmanager", <Alertmanager's fingerprint>)``; the
               sorted labels when the payload has none
service        labels ``service``, else ``job``, else ``"unknown"``
route          label ``route`` if it is ``"METHOD /path"``, else labels ``method`` and
               ``path`` (or ``handler``), else ``"*"`` (the whole service)
severity       label ``severity``: critical → SEV1, error/high → SEV2,
               warning → SEV3, info → SEV4, anything else SEV3
explanation    annotation ``summary``, else label ``alertname``
status         ``firing`` fires the alert, ``resolved`` resolves it
start / end    ``startsAt`` / ``endsAt`` (Go's zero time means "still open")
labels         the alert's labels, unchanged (runbook rules can match on them)
=============  ====================================================================

Unknown fields (Grafana's ``orgId``, ``values``, ``silenceURL``...) are ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from stanch.core.alerts import Alert, AlertKind, AlertStatus, fingerprint
from stanch.sources._common import (
    MAX_ID,
    MAX_TEXT,
    TIME_PATTERN,
    PayloadError,
    clamp_start,
    clip,
    parse_time,
    route_key,
    severity_of,
)

SOURCE: Final = "alertmanager"
MAX_ALERTS: Final = 1000

_Time = Annotated[str, StringConstraints(max_length=64, pattern=TIME_PATTERN)]
Labels = dict[str, str]


class AlertmanagerAlert(BaseModel):
    """One alert of the group's snapshot."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    startsAt: _Time
    endsAt: _Time | Literal[""] = ""
    generatorURL: str = ""
    fingerprint: str = Field("", max_length=256)


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook body, version 4 (Grafana's version 1 has the same shape)."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4", "1"] = Field(description='"4" (Alertmanager) or "1" (Grafana)')
    groupKey: str = ""
    truncatedAlerts: Annotated[int, Strict()] = Field(0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertmanagerAlert] = Field(max_length=MAX_ALERTS)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert of a snapshot: take it once per ``delivery_key``."""

    delivery_key: str
    alert: Alert


def parse(data: Any, now: float) -> list[Delivery]:
    """Validate a decoded JSON body and normalize it; raises PayloadError only."""
    try:
        payload = AlertmanagerPayload.model_validate(data)
    except PydanticValidationError as exc:
        raise PayloadError.from_pydantic(exc) from None
    return normalize(payload, now)


def normalize(payload: AlertmanagerPayload, now: float) -> list[Delivery]:
    """The deliveries of a validated payload, in payload order."""
    return [_delivery(payload, i, am, now) for i, am in enumerate(payload.alerts)]


def _delivery(payload: AlertmanagerPayload, i: int, am: AlertmanagerAlert, now: float) -> Delivery:
    labels = am.labels
    starts = parse_time(am.startsAt, f"alerts.{i}.startsAt")
    ends = parse_time(am.endsAt, f"alerts.{i}.endsAt") if am.endsAt else None
    am_fp = am.fingerprint or fingerprint(*(f"{k}={v}" for k, v in sorted(labels.items())))
    identity = "\x1f".join((payload.groupKey, am_fp, am.status, am.startsAt, am.endsAt))
    name = labels.get("alertname", "")
    started = clamp_start(starts, now)
    firing = am.status == "firing"
    alert = Alert(
        fingerprint=fingerprint(SOURCE, am_fp),
        kind=AlertKind.EXTERNAL,
        service=clip(labels.get("service") or labels.get("job") or "unknown", MAX_ID),
        route=_route(labels),
        signal=clip(name or "alertmanager", 100),
        severity=severity_of(labels.get("severity")),
        status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
        started_at=started,
        updated_at=now,
        observed=0.0,
        expected=0.0,
        score=0.0,
        explanation=clip(am.annotations.get("summary") or name or "Alertmanager alert", MAX_TEXT),
        source=SOURCE,
        ended_at=None if firing else max(started, min(now, ends if ends is not None else now)),
        labels=dict(labels),
    )
    return Delivery(hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest(), alert)


def _route(labels: Labels) -> str:
    explicit = route_key(labels.get("route"))
    if explicit:
        return explicit
    method = labels.get("method", "").upper()
    path = labels.get("path") or labels.get("handler") or ""
    return route_key(f"{method} {path}") or "*"
