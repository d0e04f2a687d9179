"""The detector settings file (``detection.yaml``): read, checked, rendered and diffed.

The file, read by :func:`load_detection_config`::

    detection:
      defaults:                  # any DetectionConfig field; missing ones keep their default
        fire_after: 3            # points in a row over threshold before an alert fires
        spike_threshold: 6.0     # the z-like surprise that scores 0.5 (see DetectionConfig)
        detector: ensemble       # what scores rate and latency: ensemble (default) or robust
        warmup_s: 2m             # *_s fields take seconds or durations ("30s", "2m", "1h")
      routes:                    # optional overrides, each on top of ``defaults``
        "GET /search":           # an exact route key ...
          spike_threshold: 4.0
        "GET /products*":        # ... or a glob (case-sensitive), tried in file order ...
          latency_threshold: 8.0
        "*":                     # ... or "*": the service-wide series (not "every route")
          fire_after: 2

A series takes its exact route key, else the first glob that matches it, else ``defaults``;
entries do not stack. ``interval_s`` is global (the aggregation window), so only ``defaults``
may set it. Other top-level keys are ignored, so the section can live in a larger file.

This module owns that format: :func:`coerce_setting` checks one value,
:func:`parse_detection_config` a whole section (errors name file, line and field), and
:func:`render_detection_config` writes the normal form (every default spelled out, routes as
differences) that :func:`config_diff` compares when there is no user file to edit.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Final

import yaml

from stanch.core.detection_config import DETECTORS, DetectionConfig
from stanch.core.durations import parse_duration
from stanch.core.errors import ValidationError
from stanch.evaluation.yaml_document import read_yaml

_FIELDS: Final = {f.name: f.type for f in fields(DetectionConfig)}
_AT_LEAST_ZERO: Final = frozenset(
    {
        "min_rate_change",
        "min_spike_rps",
        "error_min_ratio",
        "error_p_floor",
        "error_min_errors",
        "latency_min_change",
        "latency_min_samples",
    }
)
_HEADER: Final = "# Stanch detector settings; format: stanch.evaluation.tune.\n"


def coerce_setting(name: str, value: object) -> float | int | str:
    """``value`` checked for DetectionConfig field ``name``; raises ValueError saying why."""
    kind = _FIELDS.get(name)
    if kind is None:
        raise ValueError(f"unknown setting; expected one of {', '.join(sorted(_FIELDS))}")
    if name == "detector":
        if value not in DETECTORS:
            raise ValueError(f"expected one of {', '.join(DETECTORS)}, got {value!r}")
        return str(value)
    if isinstance(value, str) and name.endswith("_s"):
        return parse_duration(value)
    if kind == "int":
        if type(value) is not int:
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < (0 if name in _AT_LEAST_ZERO else 1):
            raise ValueError(f"must be at least {0 if name in _AT_LEAST_ZERO else 1}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and name not in _AT_LEAST_ZERO):
        raise ValueError(f"must be {'>= 0' if name in _AT_LEAST_ZERO else '> 0'}, got {value}")
    if name in ("slo_objective", "error_min_ratio") and number >= 1:
        raise ValueError(f"must be below 1, got {value}")
    return number


def parse_detection_config(
    text: str, filename: str = "<detection>"
) -> tuple[DetectionConfig, dict[str, DetectionConfig]]:
    """(defaults, route key or glob -> settings) from YAML text; ValidationError names the
    line and field of the first problem."""
    root, data = read_yaml(text, filename)

    def fail(path: tuple[str, ...], message: str) -> ValidationError:
        return ValidationError(f"{filename}:{_line_of(root, path)}: {'.'.join(path)}: {message}")

    if not isinstance(data, dict) or not isinstance(data.get("detection"), dict):
        raise fail(("detection",), "expected a mapping with defaults and routes")
    section: dict[Any, Any] = data["detection"]
    for key in section:
        if key not in ("defaults", "routes"):
            raise fail(("detection", str(key)), "unknown key; expected defaults or routes")

    def settings(path: tuple[str, ...], value: object) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail(path, "expected a mapping of settings")
        out: dict[str, Any] = {}
        for name, raw in value.items():
            if name == "interval_s" and path[1] == "routes":
                raise fail((*path, name), "interval_s is global; set it under defaults")
            try:
                out[str(name)] = coerce_setting(str(name), raw)
            except ValueError as exc:
                raise fail((*path, str(name)), str(exc)) from None
        return out

    def build(
        path: tuple[str, ...], value: object, base: DetectionConfig | None
    ) -> DetectionConfig:
        given = settings(path, value)
        try:
            return DetectionConfig(**given) if base is None else replace(base, **given)
        except (TypeError, ValueError) as exc:  # a setting, or a combination, it refused
            raise fail(path, str(exc)) from None

    defaults = build(("detection", "defaults"), section.get("defaults"), None)
    routes_raw = section.get("routes") or {}
    if not isinstance(routes_raw, dict):
        raise fail(("detection", "routes"), "expected a mapping of route key -> settings")
    routes = {
        str(route): build(("detection", "routes", str(route)), value, defaults)
        for route, value in routes_raw.items()
    }
    return defaults, routes


def load_detection_config(path: str | Path) -> tuple[DetectionConfig, dict[str, DetectionConfig]]:
    """(defaults, route key or glob -> settings) from a detection YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"{path}:1: (file): cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}:1: (file): not valid UTF-8") from None
    return parse_detection_config(text, str(path))


def explicit_defaults(text: str) -> frozenset[str]:
    """The settings the ``defaults`` of a valid detection YAML text spell out: what the user
    chose, as opposed to what they left to the built-in defaults (``stanch backtest`` infers
    ``interval_s`` from a points file only when the user did not choose it)."""
    data = yaml.safe_load(text)
    section = data.get("detection") if isinstance(data, dict) else None
    defaults = section.get("defaults") if isinstance(section, dict) else None
    return frozenset(str(k) for k in defaults) if isinstance(defaults, dict) else frozenset()


def _line_of(root: yaml.Node | None, path: tuple[str, ...]) -> int:
    line = 1 if root is None else root.start_mark.line + 1
    node = root
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            break
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                node, line = value, key.start_mark.line + 1
                break
        else:
            break
    return line


def setting_names() -> tuple[str, ...]:
    """Every DetectionConfig setting, in declaration order (the order files are written in)."""
    return tuple(_FIELDS)


def normal_section(
    defaults: DetectionConfig, routes: Mapping[str, DetectionConfig]
) -> dict[str, Any]:
    """The ``detection`` section in normal form: every default spelled out, route entries as
    their differences from the defaults."""
    base = {name: getattr(defaults, name) for name in _FIELDS}
    return {
        "defaults": base,
        "routes": {
            route: {n: getattr(c, n) for n in _FIELDS if getattr(c, n) != base[n]}
            for route, c in routes.items()
        },
    }


def render_detection_config(
    defaults: DetectionConfig, routes: Mapping[str, DetectionConfig]
) -> str:
    """The configuration in normal form (see :func:`normal_section`), as a whole file.
    ``parse_detection_config`` reads it back unchanged."""
    doc = {"detection": normal_section(defaults, routes)}
    return _HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)


def config_diff(before: str, after: str, *, before_name: str, after_name: str) -> str:
    """A unified diff from ``before`` to ``after`` ("" when they are the same) that ``patch``
    and ``git apply`` take: a last line without a newline is marked as such."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=before_name,
        tofile=after_name,
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
