"""What the ``detection.replace`` audit entry says: the detector settings set, and what
changed from the settings recorded before.

An entry naming only the file and the routes could not answer "who loosened the spike
threshold, and from what": the trail is tamper-evident, so it must carry the values
themselves, not a pointer to a file that may have been edited since.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Final

from stanch.core.detection_config import DetectionConfig

DEFAULTS: Final = "defaults"
MAX_SUMMARY: Final = 8  # changes spelled out in the entry's "why"; all are in "after"

Settings = dict[str, dict[str, Any]]


def settings_of(defaults: DetectionConfig, routes: dict[str, DetectionConfig]) -> Settings:
    """The settings in force as set: ``{"defaults": {name: value}}`` for the defaults that
    differ from the built-in ones, and ``{route: {name: value}}`` for what each route
    overrides on top of the defaults."""
    builtin = asdict(DetectionConfig())
    base = asdict(defaults)
    out: Settings = {DEFAULTS: {k: v for k, v in base.items() if builtin[k] != v}}
    for route in sorted(routes):
        own = asdict(routes[route])
        out[f"routes.{route}"] = {k: v for k, v in own.items() if base[k] != v}
    return out


def stored_settings(text: object) -> Settings | None:
    """The settings of a detection file's text as recorded before, or None if there was
    none or it no longer parses (the entry then gives the new values only)."""
    if not isinstance(text, str):
        return None
    from stanch.evaluation.detection_file import parse_detection_config

    try:
        defaults, routes = parse_detection_config(text)
    except Exception:  # an old text this version refuses: say nothing about "before"
        return None
    return settings_of(defaults, routes)


def changes(before: Settings | None, after: Settings) -> list[dict[str, Any]]:
    """Each setting whose value moved, as ``{"scope", "setting", "old", "new"}``.

    ``old`` (or ``new``) is None where the setting was not set: the built-in default for
    ``defaults``, the defaults' value for a route. With nothing recorded before, every
    setting given is a change from the built-in value."""
    builtin = asdict(DetectionConfig())
    previous = before if before is not None else {DEFAULTS: {}}
    out = []
    for scope in sorted(set(previous) | set(after), key=lambda s: (s != DEFAULTS, s)):
        old_values, new_values = previous.get(scope, {}), after.get(scope, {})
        for name in (f.name for f in fields(DetectionConfig)):
            if name not in old_values and name not in new_values:
                continue
            old, new = old_values.get(name), new_values.get(name)
            if scope == DEFAULTS:
                old = builtin[name] if old is None else old
                new = builtin[name] if new is None else new
            if old != new:
                out.append({"scope": scope, "setting": name, "old": old, "new": new})
    return out


def summary(changed: list[dict[str, Any]]) -> str:
    """``defaults.spike_threshold 6 → 7.5; routes.GET /search.fire_after (unset) → 5``."""
    if not changed:
        return "no setting changed"

    def shown(value: Any) -> str:
        return (
            "(unset)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
        )

    parts = [
        f"{c['scope']}.{c['setting']} {shown(c['old'])} → {shown(c['new'])}"
        for c in changed[:MAX_SUMMARY]
    ]
    more = f"; and {len(changed) - MAX_SUMMARY} more" if len(changed) > MAX_SUMMARY else ""
    return "; ".join(parts) + more
