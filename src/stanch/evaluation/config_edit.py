"""Proposed detector settings as an edit of the user's own ``detection.yaml`` text.

Why not diff two rendered files: a diff between normal forms names the user's file but holds
none of its lines (comments, key order, quoting, flow style all differ), so ``patch`` rejects
it. Here the proposal is written into the user's text: a changed value is replaced where it
stands, a new setting or route is a line inserted after its mapping's last line, a route entry
that is no longer needed is deleted line by line; everything else is left byte for byte. The
positions come from PyYAML's composer (no round-trip YAML library is needed for this).

A layout that cannot be edited that way (a flow mapping that needs a new key, an empty
``defaults:``, ...) falls back to re-rendering the ``detection`` section only, then the whole
document. Whatever the path, the new text is parsed back and must give exactly the proposed
settings, in the same route order, with every other section unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import yaml

from stanch.core.detection_config import DetectionConfig
from stanch.evaluation.detection_file import (
    coerce_setting,
    normal_section,
    parse_detection_config,
    setting_names,
)

Settings = tuple[DetectionConfig, Mapping[str, DetectionConfig]]


class _Unsupported(Exception):
    """A layout the line editor leaves to the section fallback."""


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int  # character offsets into the text
    end: int
    text: str


def edited_config_text(original: str, proposed: Settings, *, filename: str = "<detection>") -> str:
    """``original`` changed to hold ``proposed``, as little as possible (see the module doc).

    ``original`` must parse (ValidationError otherwise, naming ``filename``).
    """
    current = parse_detection_config(original, filename)
    if _same(current, proposed):
        return original
    data = yaml.safe_load(original)
    for attempt in (minimal_edit, _section_rewrite):
        try:
            text = attempt(original, proposed)
        except _Unsupported:
            continue
        if text is not None and _holds(text, proposed, data):
            return text
    return _document_rewrite(data, proposed)


def minimal_edit(original: str, proposed: Settings) -> str | None:
    """The line editor alone: None when this layout needs the fallback."""
    try:
        return _Editor(original).apply(proposed)
    except _Unsupported:
        return None


# --------------------------------------------------------------------------- the line editor


class _Editor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.line_starts = [0]
        for line in text.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))
        root = _compose(text)
        detection = _value(root, "detection")
        if not isinstance(detection, yaml.MappingNode):
            raise _Unsupported("no detection mapping")
        self.detection = detection
        self.margin = _key_node(root, "detection").start_mark.column
        self.section: dict[str, Any] = yaml.safe_load(text)["detection"]
        self.current = parse_detection_config(text)
        self.edits: list[_Edit] = []

    def apply(self, proposed: Settings) -> str:
        defaults, routes = proposed
        current_defaults, current_routes = self.current
        changed = {
            name: getattr(defaults, name)
            for name in setting_names()
            if getattr(defaults, name) != getattr(current_defaults, name)
        }
        self._set_all(("defaults",), changed)
        for route in current_routes:
            if route not in routes:
                self._delete_route(route)
                continue
            own = (self.section.get("routes") or {}).get(route) or {}
            self._set_all(("routes", route), _overrides(routes[route], defaults, keep=own))
        added = []
        for route, config in routes.items():
            if route in current_routes:
                continue
            settings = [f"{n}: {_scalar(v)}" for n, v in _overrides(config, defaults).items()]
            added += _entry(self._route_key(route), settings, self._step())
        self._insert(("routes",), added)
        return self._render()

    def _set_all(self, path: tuple[str, str] | tuple[str], wanted: Mapping[str, Any]) -> None:
        """Give the mapping at ``path`` (under ``detection``) the ``wanted`` values: replace
        the ones spelled out, insert the others."""
        explicit = self.section.get(path[0]) or {}
        if len(path) == 2:
            explicit = explicit.get(path[1]) or {}
        node = self._node(path)
        missing = []
        for name, value in wanted.items():
            if name not in explicit:
                missing.append(f"{name}: {_scalar(value)}")
            elif _coerced(name, explicit[name]) != value:
                self._replace(_value(node, name), _scalar(value))
        self._insert(path, missing)

    def _node(self, path: tuple[str, ...]) -> yaml.Node | None:
        node: yaml.Node | None = self.detection
        for part in path:
            node = _value(node, part)
        return node

    def _replace(self, value: yaml.Node | None, text: str) -> None:
        if not isinstance(value, yaml.ScalarNode) or value.start_mark.line != value.end_mark.line:
            raise _Unsupported("not a one-line scalar")
        self.edits.append(_Edit(value.start_mark.index, value.end_mark.index, text))

    def _insert(self, path: tuple[str, ...], lines: list[str]) -> None:
        """Append entry ``lines`` to the block mapping at ``path``; a missing mapping is
        created in its parent (``routes:`` then the lines, indented)."""
        if not lines:
            return
        node = self._node(path)
        while node is None and path:
            lines = _entry(_key(path[-1]), lines, self._step())
            path = path[:-1]
            node = self._node(path)
        if isinstance(node, yaml.MappingNode) and node.flow_style and not node.value:
            self._fill_empty(path, node, lines)  # "routes: {}", as the normal form writes it
            return
        if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
            raise _Unsupported("cannot insert into a flow mapping")
        pad = " " * node.value[0][0].start_mark.column
        at = self._line_start(_last_line(node) + 1)
        self.edits.append(_Edit(at, at, "".join(pad + line + self.newline for line in lines)))

    def _fill_empty(self, path: tuple[str, ...], node: yaml.MappingNode, lines: list[str]) -> None:
        """Replace an empty ``{}`` with the entry ``lines`` as a block under its key."""
        column = self.margin
        if path:
            column = _key_node(self._node(path[:-1]), path[-1]).start_mark.column
        if self.text[node.start_mark.index : node.end_mark.index] != "{}":
            raise _Unsupported("not a plain {}")
        pad = " " * (column + self._step())
        block = "".join(self.newline + pad + line for line in lines)
        start = node.start_mark.index
        while start > 0 and self.text[start - 1] in " \t":
            start -= 1
        self.edits.append(_Edit(start, node.end_mark.index, block))

    def _delete_route(self, route: str) -> None:
        routes = self._node(("routes",))
        if not isinstance(routes, yaml.MappingNode) or routes.flow_style:
            raise _Unsupported("routes is not a block mapping")
        for key, value in routes.value:
            if isinstance(key, yaml.ScalarNode) and key.value == route:
                first = self._line_start(key.start_mark.line)
                if self.text[first : key.start_mark.index].strip():
                    raise _Unsupported("the route key does not start its line")
                self.edits.append(_Edit(first, self._line_start(_last_line(value) + 1), ""))
                return
        raise _Unsupported(f"route {route!r} not found")

    def _route_key(self, route: str) -> str:
        """A new route key, double-quoted like the file's first one (or when it must be)."""
        routes = self._node(("routes",))
        first = (
            routes.value[0][0] if isinstance(routes, yaml.MappingNode) and routes.value else None
        )
        if isinstance(first, yaml.ScalarNode) and first.style == '"':
            return json.dumps(route)
        return _key(route)

    def _step(self) -> int:
        """The file's indentation step: how far ``detection``'s keys sit right of it."""
        children = self.detection.value
        inner = children[0][0].start_mark.column if children else 0
        return inner - self.margin if children and inner > self.margin else 2

    def _line_start(self, line: int) -> int:
        return self.line_starts[min(line, len(self.line_starts) - 1)]

    def _render(self) -> str:
        text = self.text
        edits = sorted(self.edits, key=lambda e: (e.start, e.end))
        for before, after in pairwise(edits):
            if after.start < before.end:
                raise _Unsupported("overlapping edits")
        if edits and edits[-1].start == len(text) and not text.endswith(("\n", "\r")):
            text += self.newline  # appending after a last line that has no newline
        for edit in reversed(edits):
            text = text[: edit.start] + edit.text + text[edit.end :]
        return text


def _compose(text: str) -> yaml.Node | None:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    return node if isinstance(node, yaml.Node) else None


def _key_node(node: yaml.Node | None, name: str) -> yaml.Node:
    assert isinstance(node, yaml.MappingNode)
    return next(k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == name)


def _value(node: yaml.Node | None, name: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name and isinstance(value, yaml.Node):
            return value
    return None


def _last_line(node: yaml.Node) -> int:
    """The last line holding the node's own text (a block mapping ends with its last value)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _last_line(node.value[-1][1])
    end = node.end_mark
    if end.column == 0 and end.line > node.start_mark.line:
        return end.line - 1
    return end.line


def _entry(key: str, children: list[str], step: int) -> list[str]:
    """Lines of ``key:`` holding ``children`` (entry lines), or ``key: {}`` without any."""
    if not children:
        return [f"{key}: {{}}"]
    return [f"{key}:", *(" " * step + line for line in children)]


def _key(name: str) -> str:
    """A mapping key as YAML: plain when that reads back as the same string, else
    double-quoted (a JSON string is a YAML double-quoted scalar)."""
    plain = yaml.safe_dump(name, default_flow_style=True).splitlines()[0]
    return name if plain == name else json.dumps(name)


def _scalar(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True).splitlines()[0]


def _coerced(name: str, raw: object) -> object:
    try:
        return coerce_setting(name, raw)
    except ValueError:
        return None


def _overrides(
    config: DetectionConfig, defaults: DetectionConfig, *, keep: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The settings ``config`` must spell out over ``defaults``: those that differ, and those
    already spelled out in ``keep`` (updated in place rather than deleted)."""
    return {
        name: getattr(config, name)
        for name in setting_names()
        if getattr(config, name) != getattr(defaults, name) or (keep and name in keep)
    }


# --------------------------------------------------------------------------- fallbacks


def _section_rewrite(original: str, proposed: Settings) -> str:
    """``original`` with the top-level ``detection`` section re-rendered in normal form."""
    root = _compose(original)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise _Unsupported("not a block mapping at the top")
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "detection":
            if key.start_mark.column != 0:
                raise _Unsupported("detection is not at the left margin")
            lines = original.splitlines(keepends=True)
            first, last = key.start_mark.line, _last_line(value)
            section = yaml.safe_dump(
                {"detection": normal_section(*proposed)}, sort_keys=False, width=100
            )
            if "\r\n" in original:
                section = section.replace("\n", "\r\n")
            if last + 1 >= len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
                section = section.rstrip("\r\n")  # the file had no final newline: keep so
            return "".join([*lines[:first], section, *lines[last + 1 :]])
    raise _Unsupported("no detection key")


def _document_rewrite(data: Any, proposed: Settings) -> str:
    document = dict(data) if isinstance(data, dict) else {}
    document["detection"] = normal_section(*proposed)
    return yaml.safe_dump(document, sort_keys=False, width=100)


def _same(a: Settings, b: Settings) -> bool:
    return a[0] == b[0] and list(a[1].items()) == list(b[1].items())


def _holds(text: str, proposed: Settings, data: Any) -> bool:
    """Whether ``text`` parses to exactly ``proposed`` and keeps every other section."""
    try:
        parsed = parse_detection_config(text)
        again = yaml.safe_load(text)
    except Exception:  # a bad edit is a reason to fall back, whatever the parser said
        return False
    if not _same(parsed, proposed):
        return False
    others = {k: v for k, v in data.items() if k != "detection"}
    return {k: v for k, v in again.items() if k != "detection"} == others
