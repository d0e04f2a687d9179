"""Matchers: which alerts a silence names (``route=GET /search*``, ``route!=GET /health``).

Matchers are globs, equal (``route=GET /search*``) or not (``route!=GET /health``, like
Alertmanager's ``isEqual: false``). There are no regular-expression matchers on purpose:
Python's ``re`` has no time limit, alerts are matched inside the engine's step, and a
pattern check for catastrophic backtracking is a deny-list that misses shapes such as
``(a|aa)+$``; one bad silence would stall detection for every service. Globs plus negation
cover what silences are for (a service, some routes, a kind, a label).

>>> str(parse_matcher("route != GET /health"))
'route!=GET /health'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from stanch.core.alerts import Alert
from stanch.core.errors import ValidationError

_FIELDS = ("service", "route", "kind", "client", "source")


@dataclass(frozen=True, slots=True)
class Matcher:
    """``field`` is service, route, kind, client, source, or ``label:<name>``; ``pattern`` a
    case-sensitive glob. ``equal=False`` matches the alerts the glob does *not* match (an
    alert without the label, or without any client matching, is one of them)."""

    field: str
    pattern: str
    equal: bool = True

    def __post_init__(self) -> None:
        if self.field not in _FIELDS and not self.field.startswith("label:"):
            raise ValidationError(
                f"matcher field {self.field!r} must be one of {', '.join(_FIELDS)} or label:NAME"
            )

    def matches(self, alert: Alert) -> bool:
        return self._glob_hits(alert) is self.equal

    def _glob_hits(self, alert: Alert) -> bool:
        if self.field == "client":
            return any(fnmatchcase(c, self.pattern) for c in alert.clients)
        if self.field.startswith("label:"):
            value = alert.labels.get(self.field.removeprefix("label:"))
            return value is not None and fnmatchcase(value, self.pattern)
        value = {
            "service": alert.service,
            "route": alert.route,
            "kind": alert.kind.value,
            "source": alert.source,
        }[self.field]
        return fnmatchcase(value, self.pattern)

    @property
    def op(self) -> str:
        return "=" if self.equal else "!="

    @property
    def narrows(self) -> bool:
        """Whether this matcher alone keeps some alerts out. Only a positive glob with a
        literal character does: a negative one still lets through everything else, and one
        made of wildcards alone (``*``, ``?*``, ``[!x]*``) matches nearly any value."""
        return self.equal and bool(_literal_part(self.pattern))

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.pattern}"


def _literal_part(pattern: str) -> str:
    """The characters of a glob outside its wildcards and ``[...]`` classes."""
    return re.sub(r"\[[^\]]*\]?|[*?]", "", pattern)


def parse_matcher(text: str) -> Matcher:
    """``field=glob`` or ``field!=glob`` (spaces around either side are ignored)."""
    field, sep, pattern = text.partition("=")
    if not sep:
        raise ValidationError(f"matcher {text.strip()[:80]!r} must read field=glob or field!=glob")
    equal = not field.endswith("!")
    return Matcher(field.removesuffix("!").strip(), pattern.strip(), equal)
