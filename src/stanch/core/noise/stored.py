"""The stored form of silences and maintenance windows (JSON-ready dicts), both ways.

Matchers are written as ``[field, pattern]`` when equal, the form earlier versions read and
wrote, and ``[field, pattern, "!="]`` otherwise; reading takes both.
"""

from __future__ import annotations

from typing import Any

from stanch.core.noise.matchers import Matcher
from stanch.core.noise.rules import MaintenanceWindow, Silence


def silence_to_dict(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        # [field, pattern] for an equal matcher: the form earlier versions read
        "matchers": [
            [m.field, m.pattern] if m.equal else [m.field, m.pattern, m.op]
            for m in silence.matchers
        ],
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def silence_from_dict(raw: dict[str, Any]) -> Silence:
    matchers = []
    for item in raw["matchers"]:
        field, pattern, *rest = item
        matchers.append(Matcher(str(field), str(pattern), not rest or rest[0] != "!="))
    return Silence(
        raw["id"],
        tuple(matchers),
        float(raw["starts_at"]),
        float(raw["ends_at"]),
        raw.get("created_by", ""),
        raw.get("comment", ""),
    )


def window_to_dict(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "service": window.service,
        "routes": list(window.routes),
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "weekdays": list(window.weekdays),
        "start_minute": window.start_minute,
        "end_minute": window.end_minute,
        "comment": window.comment,
        "created_by": window.created_by,
    }


def window_from_dict(raw: dict[str, Any]) -> MaintenanceWindow:
    return MaintenanceWindow(
        raw["id"],
        raw["service"],
        tuple(raw.get("routes", ())),
        raw.get("starts_at"),
        raw.get("ends_at"),
        tuple(raw.get("weekdays", ())),
        int(raw.get("start_minute", 0)),
        int(raw.get("end_minute", 0)),
        raw.get("comment", ""),
        raw.get("created_by", ""),
    )


def rule_to_dict(rule: Silence | MaintenanceWindow) -> dict[str, Any]:
    return silence_to_dict(rule) if isinstance(rule, Silence) else window_to_dict(rule)
