"""A versioned configuration store: every change is a new version, validated, and revertible.

Services read their settings from it; each change becomes a :class:`ChangeEvent` that root-cause
analysis can rank, and the ``rollback_config`` action reverts a bad change by writing the
previous values as a new version (history is never rewritten).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stanch.core.errors import NotFound, ValidationError
from stanch.core.events import ChangeEvent, ChangeKind

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
}


@dataclass(frozen=True, slots=True)
class ConfigKeySpec:
    """What a key may hold, and which routes it is known to affect (for root-cause ranking)."""

    key: str
    type: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    routes: tuple[str, ...] = ()
    description: str = ""

    def check(self, value: Any) -> str | None:
        """The reason ``value`` is refused, or None when it is acceptable."""
        allowed = _TYPES.get(self.type)
        if allowed is None:
            return f"unknown type {self.type!r}"
        if isinstance(value, bool) and self.type != "bool":
            return f"expected {self.type}, got bool"
        if not isinstance(value, allowed):
            return f"expected {self.type}, got {type(value).__name__}"
        number = float(value) if isinstance(value, int | float) else None
        if number is not None and not math.isfinite(number):
            return f"{value!r} is not a finite number"
        if number is not None and self.minimum is not None and number < self.minimum:
            return f"{value!r} is below the minimum {self.minimum}"
        if number is not None and self.maximum is not None and number > self.maximum:
            return f"{value!r} is above the maximum {self.maximum}"
        return None


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    version: int
    ts: float
    values: Mapping[str, Any]
    author: str
    reason: str
    changed: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def change_event(self, service: str, specs: Mapping[str, ConfigKeySpec]) -> ChangeEvent:
        routes = sorted({r for key in self.changed for r in specs[key].routes})
        keys = ", ".join(sorted(self.changed))
        olds = "; ".join(f"{k}={v[0]!r}" for k, v in sorted(self.changed.items()))
        news = "; ".join(f"{k}={v[1]!r}" for k, v in sorted(self.changed.items()))
        return ChangeEvent(
            id=f"config-v{self.version}",
            ts=self.ts,
            service=service,
            kind=ChangeKind.CONFIG,
            summary=f"config v{self.version}: {news} ({self.reason or 'no reason given'})",
            key=keys,
            old_value=olds,
            new_value=news,
            actor=self.author,
            version=str(self.version),
            routes=tuple(routes),
        )


class ConfigStore:
    """Versions of one service's configuration, validated against a schema."""

    def __init__(
        self,
        service: str,
        schema: list[ConfigKeySpec],
        *,
        now: float = 0.0,
        history: list[ConfigVersion] | None = None,
    ) -> None:
        self.service = service
        self.specs = {spec.key: spec for spec in schema}
        if history:
            self._history = list(history)
        else:
            initial = {spec.key: spec.default for spec in schema}
            self._history = [ConfigVersion(1, now, initial, "stanch", "initial defaults")]

    @property
    def current(self) -> ConfigVersion:
        return self._history[-1]

    @property
    def history(self) -> list[ConfigVersion]:
        return list(self._history)

    def get(self, key: str) -> Any:
        return self.current.values[key]

    def version(self, number: int) -> ConfigVersion:
        for version in self._history:
            if version.version == number:
                return version
        raise NotFound(f"config version {number} does not exist")

    def set(
        self, now: float, changes: Mapping[str, Any], *, author: str, reason: str = ""
    ) -> tuple[ConfigVersion, ChangeEvent]:
        """Validate and apply ``changes`` as a new version; raises ValidationError, naming keys."""
        problems = []
        for key, value in changes.items():
            spec = self.specs.get(key)
            if spec is None:
                problems.append(f"{key}: unknown configuration key")
                continue
            why = spec.check(value)
            if why:
                problems.append(f"{key}: {why}")
        if problems:
            raise ValidationError("; ".join(problems))
        old = self.current.values
        changed = {k: (old.get(k), v) for k, v in changes.items() if old.get(k) != v}
        if not changed:
            raise ValidationError("no change: every value is already current")
        values = {**old, **{k: v for k, (_, v) in changed.items()}}
        version = ConfigVersion(self.current.version + 1, now, values, author, reason, changed)
        self._history.append(version)
        return version, version.change_event(self.service, self.specs)

    def rollback(
        self, now: float, to_version: int, *, author: str, reason: str = ""
    ) -> tuple[ConfigVersion, ChangeEvent]:
        """Make the values of ``to_version`` current again, as a new version."""
        target = self.version(to_version)
        changes = {k: v for k, v in target.values.items() if self.current.values.get(k) != v}
        return self.set(now, changes, author=author, reason=reason or f"rollback to v{to_version}")

    def revert(
        self, now: float, version: int, *, author: str, reason: str = ""
    ) -> tuple[ConfigVersion, ChangeEvent]:
        """Undo only the keys ``version`` changed, keeping later unrelated changes."""
        bad = self.version(version)
        changes = {
            key: old
            for key, (old, new) in bad.changed.items()
            if self.current.values.get(key) == new
        }
        if not changes:
            raise ValidationError(f"version {version}'s changes are no longer current")
        return self.set(now, changes, author=author, reason=reason or f"revert v{version}")

    @staticmethod
    def diff(a: ConfigVersion, b: ConfigVersion) -> dict[str, tuple[Any, Any]]:
        keys = set(a.values) | set(b.values)
        return {
            k: (a.values.get(k), b.values.get(k))
            for k in sorted(keys)
            if a.values.get(k) != b.values.get(k)
        }
