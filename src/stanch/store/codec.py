"""Domain objects to JSON-safe dicts and back, losslessly, for the store and the wire.

Pure functions, no I/O. Each ``*_to_dict`` output survives ``json.dumps(..., allow_nan=False)``
(PostgreSQL's JSON type refuses ``NaN`` and ``Infinity``), and each ``*_from_dict`` rebuilds an
object equal to the original, including the fields that dataclass equality ignores (``labels``,
``params``, ``data``). Enums travel as their values, sets as sorted lists, tuples as lists.

Floats are exact: JSON numbers are written with ``repr`` and read back bit for bit. A float that
JSON cannot hold (a z-score of ``inf`` when a baseline has no spread) is written as the tagged
object ``{"$float": "inf"}`` and read back as the float.

Free-form payloads (timeline ``data``, ``suspects``, action ``params``, config values) hold
whatever the core put there; they must be JSON-shaped (None, bool, int, float, str, lists,
tuples, dicts with string keys other than ``"$float"``) and anything else raises ``TypeError``
here, naming where, rather than failing later inside a database driver. Tuples inside them
come back as lists.

``*_from_dict`` fills optional fields the dict lacks with the dataclass defaults, so documents
written before a field was added still load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.config import ConfigVersion
from stanch.core.events import ChangeEvent, ChangeKind
from stanch.core.incidents import Impact, Incident, IncidentState, TimelineEntry
from stanch.core.severity import Severity

FLOAT_TAG = "$float"

JSONDict = dict[str, Any]


def to_json(value: Any, where: str = "value") -> Any:
    """``value`` as strict JSON data; non-finite floats tagged, tuples as lists."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum as its plain value
    if isinstance(value, str):
        return str(value)  # a StrEnum as its plain value
    if isinstance(value, float):
        return value if math.isfinite(value) else {FLOAT_TAG: repr(value)}
    if isinstance(value, list | tuple):
        return [to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: JSONDict = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string, so JSON cannot hold it")
            if key == FLOAT_TAG:
                raise TypeError(f"{where}: the key {FLOAT_TAG!r} is reserved for tagged floats")
            out[key] = to_json(item, f"{where}.{key}")
        return out
    raise TypeError(f"{where}: {type(value).__name__} is not JSON-safe")


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json` (tagged floats become floats again)."""
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(FLOAT_TAG), str):
            return float(value[FLOAT_TAG])
        return {key: from_json(item) for key, item in value.items()}
    return value


def _num(value: float) -> Any:
    return to_json(float(value))


def _opt_num(value: float | None) -> Any:
    return None if value is None else _num(value)


def _float(raw: Any) -> float:
    return float(from_json(raw))


def _opt_float(raw: Any) -> float | None:
    return None if raw is None else _float(raw)


# -- alerts ---------------------------------------------------------------------------------


def alert_to_dict(alert: Alert) -> JSONDict:
    return {
        "fingerprint": alert.fingerprint,
        "kind": alert.kind.value,
        "service": alert.service,
        "route": alert.route,
        "signal": alert.signal,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "started_at": _num(alert.started_at),
        "updated_at": _num(alert.updated_at),
        "observed": _num(alert.observed),
        "expected": _num(alert.expected),
        "score": _num(alert.score),
        "explanation": alert.explanation,
        "source": alert.source,
        "ended_at": _opt_num(alert.ended_at),
        "clients": list(alert.clients),
        "labels": dict(alert.labels),
    }


def alert_from_dict(d: Mapping[str, Any]) -> Alert:
    return Alert(
        fingerprint=d["fingerprint"],
        kind=AlertKind(d["kind"]),
        service=d["service"],
        route=d["route"],
        signal=d["signal"],
        severity=Severity(d["severity"]),
        status=AlertStatus(d["status"]),
        started_at=_float(d["started_at"]),
        updated_at=_float(d["updated_at"]),
        observed=_float(d["observed"]),
        expected=_float(d["expected"]),
        score=_float(d["score"]),
        explanation=d["explanation"],
        source=d.get("source", "detector"),
        ended_at=_opt_float(d.get("ended_at")),
        clients=tuple(d.get("clients", ())),
        labels=dict(d.get("labels", {})),
    )


# -- incidents ------------------------------------------------------------------------------


def timeline_entry_to_dict(entry: TimelineEntry, where: str = "entry") -> JSONDict:
    return {
        "ts": _num(entry.ts),
        "kind": entry.kind,
        "text": entry.text,
        "actor": entry.actor,
        "data": to_json(entry.data, f"{where}.data"),
    }


def timeline_entry_from_dict(d: Mapping[str, Any]) -> TimelineEntry:
    return TimelineEntry(
        ts=_float(d["ts"]),
        kind=d["kind"],
        text=d["text"],
        actor=d.get("actor", "stanch"),
        data=from_json(d.get("data", {})),
    )


def impact_to_dict(impact: Impact) -> JSONDict:
    return {
        "requests": impact.requests,
        "failed": impact.failed,
        "protected": impact.protected,
        "clients_seen": sorted(impact.clients_seen),
        "clients_failed": sorted(impact.clients_failed),
    }


def impact_from_dict(d: Mapping[str, Any]) -> Impact:
    return Impact(
        requests=int(d.get("requests", 0)),
        failed=int(d.get("failed", 0)),
        protected=int(d.get("protected", 0)),
        clients_seen=set(d.get("clients_seen", ())),
        clients_failed=set(d.get("clients_failed", ())),
    )


def incident_to_dict(incident: Incident, *, timeline: bool = True) -> JSONDict:
    """``timeline=False`` leaves the timeline out, for a store that keeps it elsewhere."""
    where = f"incident {incident.id}"
    doc: JSONDict = {
        "id": incident.id,
        "service": incident.service,
        "title": incident.title,
        "severity": incident.severity.value,
        "opened_at": _num(incident.opened_at),
        "state": incident.state.value,
        "routes": sorted(incident.routes),
        "clients": sorted(incident.clients),
        "alerts": {key: alert_to_dict(alert) for key, alert in incident.alerts.items()},
        "entered": {state: _num(at) for state, at in incident.entered.items()},
        "impact": impact_to_dict(incident.impact),
        "suspects": to_json(incident.suspects, f"{where} suspects"),
        "onset": _num(incident.onset),
        "healthy_since": _opt_num(incident.healthy_since),
        "reopens": incident.reopens,
        "acknowledged_by": incident.acknowledged_by,
        "resolution": incident.resolution,
        "comments": [
            timeline_entry_to_dict(e, f"{where} comments[{i}]")
            for i, e in enumerate(incident.comments)
        ],
    }
    if timeline:
        doc["timeline"] = [
            timeline_entry_to_dict(e, f"{where} timeline[{i}]")
            for i, e in enumerate(incident.timeline)
        ]
    return doc


def incident_from_dict(d: Mapping[str, Any]) -> Incident:
    incident = Incident(
        id=d["id"],
        service=d["service"],
        title=d["title"],
        severity=Severity(d["severity"]),
        opened_at=_float(d["opened_at"]),
        state=IncidentState(d.get("state", IncidentState.DETECTED.value)),
        routes=set(d.get("routes", ())),
        clients=set(d.get("clients", ())),
        alerts={key: alert_from_dict(raw) for key, raw in d.get("alerts", {}).items()},
        timeline=[timeline_entry_from_dict(raw) for raw in d.get("timeline", ())],
        impact=impact_from_dict(d.get("impact", {})),
        suspects=from_json(d.get("suspects", [])),
        healthy_since=_opt_float(d.get("healthy_since")),
        reopens=int(d.get("reopens", 0)),
        acknowledged_by=d.get("acknowledged_by", ""),
        resolution=d.get("resolution", ""),
        comments=[timeline_entry_from_dict(raw) for raw in d.get("comments", ())],
    )
    # __post_init__ fills `entered` and `onset` from `opened_at`; a stored incident already went
    # through that once, and its onset may legitimately be 0.0 (a replay that starts at t=0),
    # which __post_init__ would read as "unset". So both are restored as they were.
    if "entered" in d:
        incident.entered = {state: _float(at) for state, at in d["entered"].items()}
    if "onset" in d:
        incident.onset = _float(d["onset"])
    return incident


# -- actions --------------------------------------------------------------------------------


def action_to_dict(action: Action) -> JSONDict:
    return {
        "id": action.id,
        "incident_id": action.incident_id,
        "kind": action.kind.value,
        "mode": action.mode.value,
        "state": action.state.value,
        "service": action.service,
        "target": action.target,
        "rule": action.rule,
        "created_at": _num(action.created_at),
        "ttl_s": _num(action.ttl_s),
        "verify_within_s": _num(action.verify_within_s),
        "params": to_json(action.params, f"action {action.id} params"),
        "reason": action.reason,
        "applied_at": _opt_num(action.applied_at),
        "ended_at": _opt_num(action.ended_at),
        "decided_by": action.decided_by,
        "stage": action.stage,
        "stage_at": _opt_num(action.stage_at),
        "verified": action.verified,
    }


def action_from_dict(d: Mapping[str, Any]) -> Action:
    return Action(
        id=d["id"],
        incident_id=d["incident_id"],
        kind=ActionKind(d["kind"]),
        mode=ActionMode(d["mode"]),
        state=ActionState(d["state"]),
        service=d["service"],
        target=d["target"],
        rule=d["rule"],
        created_at=_float(d["created_at"]),
        ttl_s=_float(d["ttl_s"]),
        verify_within_s=_float(d["verify_within_s"]),
        params=from_json(d.get("params", {})),
        reason=d.get("reason", ""),
        applied_at=_opt_float(d.get("applied_at")),
        ended_at=_opt_float(d.get("ended_at")),
        decided_by=d.get("decided_by", ""),
        stage=int(d.get("stage", 0)),
        stage_at=_opt_float(d.get("stage_at")),
        verified=d.get("verified"),
    )


# -- configuration and changes --------------------------------------------------------------


def config_version_to_dict(version: ConfigVersion) -> JSONDict:
    where = f"config v{version.version}"
    return {
        "version": version.version,
        "ts": _num(version.ts),
        "values": to_json(dict(version.values), f"{where} values"),
        "author": version.author,
        "reason": version.reason,
        # [old, new] pairs: JSON has no tuples; from_dict turns them back into tuples.
        "changed": {
            key: [to_json(old, f"{where} changed.{key}"), to_json(new, f"{where} changed.{key}")]
            for key, (old, new) in version.changed.items()
        },
    }


def config_version_from_dict(d: Mapping[str, Any]) -> ConfigVersion:
    return ConfigVersion(
        version=int(d["version"]),
        ts=_float(d["ts"]),
        values=from_json(d.get("values", {})),
        author=d.get("author", ""),
        reason=d.get("reason", ""),
        changed={
            key: (from_json(pair[0]), from_json(pair[1]))
            for key, pair in d.get("changed", {}).items()
        },
    )


def change_to_dict(change: ChangeEvent) -> JSONDict:
    return {
        "id": change.id,
        "ts": _num(change.ts),
        "service": change.service,
        "kind": change.kind.value,
        "summary": change.summary,
        "key": change.key,
        "old_value": change.old_value,
        "new_value": change.new_value,
        "actor": change.actor,
        "version": change.version,
        "routes": list(change.routes),
        "details": dict(change.details),
    }


def change_from_dict(d: Mapping[str, Any]) -> ChangeEvent:
    return ChangeEvent(
        id=d["id"],
        ts=_float(d["ts"]),
        service=d["service"],
        kind=ChangeKind(d["kind"]),
        summary=d.get("summary", ""),
        key=d.get("key", ""),
        old_value=d.get("old_value", ""),
        new_value=d.get("new_value", ""),
        actor=d.get("actor", ""),
        version=d.get("version", ""),
        routes=tuple(d.get("routes", ())),
        details=dict(d.get("details", {})),
    )
