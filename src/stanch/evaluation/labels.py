"""Labeled incidents: the answer key a backtest scores alerts against.

A YAML or JSON file holding a list of labeled incidents::

      - service: shop
        route: "GET /search"      # optional glob on "METHOD /template"; missing = any route
        kind: traffic_spike       # optional AlertKind value; missing = any kind
        start: 2026-11-25T09:18:00Z   # ISO-8601 (naive = UTC) or epoch seconds
        end: 1764062520               # (not milliseconds: years 2000..2200 only)
        name: search-flood        # optional, shown in reports

Like the history readers (:mod:`stanch.evaluation.history`), a bad entry raises
:class:`~stanch.core.errors.ValidationError` saying ``file:line: field: problem``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Final

import yaml

from stanch.core.alerts import AlertKind
from stanch.core.errors import ValidationError
from stanch.core.series import SERVICE_WIDE
from stanch.evaluation.history import format_utc, open_input, parse_history_time, short_repr
from stanch.evaluation.yaml_document import read_yaml

MAX_LABEL_BYTES: Final = 1024 * 1024
_LABEL_FIELDS: Final = frozenset({"service", "route", "kind", "start", "end", "name"})


@dataclass(frozen=True, slots=True)
class Label:
    """One labeled incident: on ``service`` (``route`` glob, ``kind``; None = any) in
    ``[start, end]``."""

    service: str
    start: float
    end: float
    route: str | None = None
    kind: AlertKind | None = None
    name: str = ""
    #: ``file:line`` of the entry, for messages about it ("" for a label built in code).
    where: str = field(default="", compare=False)

    def covers(self, service: str, route: str, kind: AlertKind) -> bool:
        """Whether an alert on this series and kind is about this incident (time aside).

        A service-wide alert (route ``"*"``) is about every route of its service.
        """
        if service != self.service or (self.kind is not None and kind is not self.kind):
            return False
        return route == SERVICE_WIDE or self.route is None or fnmatchcase(route, self.route)

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        when = format_utc(self.start, "%Y-%m-%d %H:%M:%S")
        return f"{self.service} {self.route or '*'} {self.kind or 'any'} @ {when}"


def load_labels(path: str | Path) -> list[Label]:
    """Labeled incidents from a YAML or JSON file; ValidationError names file:line: field."""
    with open_input(path) as fh:
        raw = fh.read(MAX_LABEL_BYTES + 1)
    if len(raw) > MAX_LABEL_BYTES:
        raise ValidationError(f"{path}:1: (file): larger than {MAX_LABEL_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(f"{path}:1: (file): not valid UTF-8") from None
    root, data = read_yaml(text, str(path))
    if root is None or data is None:
        return []
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise ValidationError(f"{path}:1: (root): expected a list of labeled incidents")
    return [
        _label(item, node, f"{path}", i)
        for i, (item, node) in enumerate(zip(data, root.value, strict=True))
    ]


def _label(item: object, node: yaml.Node, path: str, index: int) -> Label:
    line = node.start_mark.line + 1

    def fail(name: str, message: str) -> ValidationError:
        at = line
        if isinstance(node, yaml.MappingNode):
            at = next((k.start_mark.line + 1 for k, _ in node.value if k.value == name), line)
        return ValidationError(f"{path}:{at}: [{index}].{name}: {message}")

    if not isinstance(item, dict):
        raise fail("(item)", "expected a mapping with service, start and end")
    for name in item:
        if name not in _LABEL_FIELDS:
            raise fail(
                str(name), f"unknown field; expected one of {', '.join(sorted(_LABEL_FIELDS))}"
            )
    for name in ("service", "start", "end"):
        if name not in item:
            raise fail(name, "required field missing")
    times: dict[str, float] = {}
    for name in ("start", "end"):
        try:
            times[name] = parse_history_time(item[name])
        except (ValueError, OverflowError) as exc:
            raise fail(name, str(exc)) from None
    if times["end"] < times["start"]:
        raise fail("end", "is before start")
    strings: dict[str, str | None] = {}
    for name in ("service", "route", "name"):
        value = item.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise fail(name, f"expected a non-empty string, got {short_repr(value)}")
        strings[name] = value
    kind: AlertKind | None = None
    if item.get("kind") is not None:
        try:
            kind = AlertKind(item["kind"])
        except ValueError:
            raise fail("kind", f"expected one of {', '.join(AlertKind)}") from None
    return Label(
        service=strings["service"] or "",
        start=times["start"],
        end=times["end"],
        route=strings["route"],
        kind=kind,
        name=strings["name"] or "",
        where=f"{path}:{line}",
    )
