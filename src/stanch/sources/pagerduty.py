"""PagerDuty Events API v2: alert events (trigger, acknowledge, resolve) and change events.

Dedup follows PagerDuty's rules, decided by :func:`decide` from what is remembered per
(routing_key, dedup_key) — a :class:`KeyState`, which the caller stores:

- a trigger without ``dedup_key`` opens a new alert under a generated key (returned);
- a trigger whose key is open updates that alert; after a resolve, the same key opens a **new**
  alert (a new generation, so a new fingerprint);
- acknowledge and resolve of an unknown or resolved key are dropped (still answered 202).

Normalization of a trigger into an external alert:

=============  ====================================================================
fingerprint    ``fingerprint("pagerduty-v2", routing_key, dedup_key, generation)``
service        ``custom_details.service`` if a string, else ``group``, else ``source``
route          ``custom_details.route`` or ``component`` if it is ``"METHOD /path"``,
               else ``"*"``
severity       critical → SEV1, error → SEV2, warning → SEV3, info → SEV4
explanation    ``summary``
start          ``timestamp`` (else the time received)
labels         source, component, group, class, client, dedup_key (those given)
=============  ====================================================================

A change event becomes a :class:`ChangeEvent`: service as above, kind from
``custom_details.kind`` (deploy by default), version, actor and routes from custom_details.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from stanch.core.alerts import Alert, AlertKind, AlertStatus, fingerprint
from stanch.core.events import ChangeEvent, ChangeKind
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

SOURCE: Final = "pagerduty-v2"
MAX_BODY_BYTES: Final = 512 * 1024  # PagerDuty's own payload limit

_Short = Field(None, max_length=255)


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: str | None = Field(None, max_length=64, pattern=TIME_PATTERN)
    component: str | None = _Short
    group: str | None = _Short
    class_: str | None = Field(None, alias="class", max_length=255)
    custom_details: Any = None


class PagerDutyEvent(BaseModel):
    """An alert event, as sent to PagerDuty's ``/v2/enqueue``."""

    model_config = ConfigDict(extra="ignore")

    routing_key: str = Field(min_length=1, max_length=255)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(None, min_length=1, max_length=255)
    payload: PagerDutyPayload | None = None
    images: list[Any] | None = None
    links: list[Any] | None = None
    client: str | None = _Short
    client_url: str | None = Field(None, max_length=2048)

    @model_validator(mode="after")
    def _required_by_action(self) -> PagerDutyEvent:
        if self.event_action == "trigger" and self.payload is None:
            raise ValueError("payload is required for a trigger")
        if self.event_action != "trigger" and not self.dedup_key:
            raise ValueError(f"dedup_key is required for {self.event_action}")
        return self


class PagerDutyChangePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, max_length=1024)
    source: str | None = _Short
    timestamp: str | None = Field(None, max_length=64, pattern=TIME_PATTERN)
    custom_details: Any = None


class PagerDutyChangeEvent(BaseModel):
    """A change event, as sent to PagerDuty's ``/v2/change/enqueue``."""

    model_config = ConfigDict(extra="ignore")

    routing_key: str = Field(min_length=1, max_length=255)
    payload: PagerDutyChangePayload
    links: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class KeyState:
    """What is remembered about one (routing_key, dedup_key)."""

    generation: int
    open: bool
    fingerprint: str

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: Any) -> KeyState | None:
        if not isinstance(doc, dict):
            return None
        return cls(int(doc["generation"]), bool(doc["open"]), str(doc["fingerprint"]))


Verb = Literal["fire", "update", "resolve", "acknowledge", "drop"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an alert event asks for: ``verb`` on ``alert`` (or the alert ``fingerprint``)."""

    verb: Verb
    dedup_key: str
    fingerprint: str = ""
    alert: Alert | None = None
    state: KeyState | None = None  # to store under state_key, when it changed


def parse_event(data: Any) -> PagerDutyEvent:
    """Validate a decoded JSON alert event; raises PayloadError only."""
    try:
        return PagerDutyEvent.model_validate(data)
    except PydanticValidationError as exc:
        raise PayloadError.from_pydantic(exc) from None


def parse_change(data: Any) -> PagerDutyChangeEvent:
    """Validate a decoded JSON change event; raises PayloadError only."""
    try:
        return PagerDutyChangeEvent.model_validate(data)
    except PydanticValidationError as exc:
        raise PayloadError.from_pydantic(exc) from None


def state_key(routing_key: str, dedup_key: str) -> str:
    """Where the :class:`KeyState` of a dedup key is kept (a hash: keys may be long)."""
    raw = f"{routing_key}\x1f{dedup_key}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()


def decide(event: PagerDutyEvent, state: KeyState | None, now: float, *, new_key: str) -> Outcome:
    """Apply PagerDuty's dedup rules to ``event`` given the key's ``state``.

    ``new_key`` is used when a trigger comes without a ``dedup_key``.
    """
    key = event.dedup_key or new_key
    if event.event_action == "trigger":
        if state is not None and state.open:
            alert = _alert(event, key, state.generation, now)
            return Outcome("update", key, alert.fingerprint, alert)
        generation = 1 if state is None else state.generation + 1
        alert = _alert(event, key, generation, now)
        return Outcome(
            "fire", key, alert.fingerprint, alert, KeyState(generation, True, alert.fingerprint)
        )
    if state is None or not state.open:
        return Outcome("drop", key)
    if event.event_action == "acknowledge":
        return Outcome("acknowledge", key, state.fingerprint)
    return Outcome("resolve", key, state.fingerprint, state=replace(state, open=False))


def _alert(event: PagerDutyEvent, key: str, generation: int, now: float) -> Alert:
    payload = event.payload
    assert payload is not None  # the model refuses a trigger without one
    details = payload.custom_details if isinstance(payload.custom_details, dict) else {}
    started = None
    if payload.timestamp:
        started = parse_time(payload.timestamp, "payload.timestamp")
    route = route_key(_str(details.get("route"))) or route_key(payload.component) or "*"
    labels = {
        "source": payload.source,
        "component": payload.component or "",
        "group": payload.group or "",
        "class": payload.class_ or "",
        "client": event.client or "",
        "dedup_key": key,
    }
    return Alert(
        fingerprint=fingerprint(SOURCE, event.routing_key, key, str(generation)),
        kind=AlertKind.EXTERNAL,
        service=_service(details, payload.group or payload.source),
        route=route,
        signal=clip(payload.class_ or "pagerduty", 100),
        severity=severity_of(payload.severity),
        status=AlertStatus.FIRING,
        started_at=clamp_start(started, now),
        updated_at=now,
        observed=0.0,
        expected=0.0,
        score=0.0,
        explanation=clip(payload.summary, MAX_TEXT),
        source=SOURCE,
        labels={k: v for k, v in labels.items() if v},
    )


def change_event(event: PagerDutyChangeEvent, now: float) -> ChangeEvent:
    """A :class:`ChangeEvent` from a change event; its id is stable, so retries dedupe."""
    payload = event.payload
    details = payload.custom_details if isinstance(payload.custom_details, dict) else {}
    ts = parse_time(payload.timestamp, "payload.timestamp") if payload.timestamp else None
    kind_word = _str(details.get("kind"))
    kind = ChangeKind(kind_word) if kind_word in set(ChangeKind) else ChangeKind.DEPLOY
    routes = details.get("routes")
    route_list = [r for r in routes if isinstance(r, str)] if isinstance(routes, list) else []
    ident = fingerprint(
        SOURCE, event.routing_key, payload.summary, payload.source or "", payload.timestamp or ""
    )
    return ChangeEvent(
        id=f"pd-{ident}",
        ts=min(now, ts) if ts is not None else now,
        service=_service(details, payload.source or "unknown"),
        kind=kind,
        summary=clip(payload.summary, MAX_TEXT),
        actor=clip(_str(details.get("actor")) or _str(details.get("author")) or "", MAX_ID),
        version=clip(_str(details.get("version")) or "", MAX_ID),
        routes=tuple(r for r in (route_key(x) for x in route_list[:50]) if r),
        details={"source": clip(payload.source or "", 255)},
    )


def _service(details: dict[str, Any], fallback: str) -> str:
    return clip(_str(details.get("service")) or fallback, MAX_ID)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
