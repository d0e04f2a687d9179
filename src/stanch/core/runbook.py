"""Runbooks: which alerts call for which isolation and mitigation actions.

A runbook is a YAML file written by the people who own the service. Stanch reads it, refuses
it with every problem listed (``file:line: field: message``) if it is wrong, and otherwise
turns it into frozen values that the engine matches against each alert. The file is the
contract, so it is documented here::

    version: 1                  # required; the only version this Stanch reads
    defaults:                   # optional
      ttl: 30m                  # how long an applied action may stay before it expires
      verify_within: 2m         # alert still firing this long after applying = "did not help"
    rules:                      # tried in file order
      - name: checkout-errors   # required, unique, [a-z0-9_-]+
        description: Payment failures      # optional
        match:                  # required; ``match: {}`` matches every alert
          kinds: [error_burst, slo_burn]   # AlertKind values; empty or missing = any
          min_severity: SEV3               # alert must be at least this urgent (SEV1 is worst)
          services: ["shop"]               # fnmatch globs (case-sensitive); missing = any
          routes: ["POST /checkout"]       # globs on "METHOD /template" or "*"; missing = any
          labels: {team: payments}         # each must equal the alert's label; missing = any
        actions:                # optional; a rule without actions plus ``stop`` silences
          - kind: circuit_break #   the rules after it
            mode: auto          # auto | approve, required: a human decides which
            ttl: 10m            # optional, overrides defaults.ttl
            verify_within: 1m   # optional, overrides defaults.verify_within
            target: "POST /checkout"   # optional; otherwise derived from the alert at run time
            params: {open_for: 30s, probes: 5}
        stop: true              # optional, default false: later rules are not considered

Durations are ``"30s"``, ``"10m"``, ``"1h"``, ``"1h30m"``, ``"500ms"`` or a number of seconds,
and are normalized to float seconds. Params per action kind (unknown params are refused;
defaults are filled in, so a parsed spec always carries every param of its kind):

=================  ===========================================================================
circuit_break      open_for (duration, 30s), probes (int >= 1, 5),
                   failure_ratio (0 < x <= 1, 0.5), min_calls (int >= 1, 10)
disable_route      status (int 400..599, 503), body (str, a JSON message)
throttle_route     rate (req/s > 0, required), burst (int >= 1, max(1, int(rate)))
throttle_client    rate, burst as above, route (route key scoping the throttle; None = all)
block_client       status (int 400..599, 403)
shed_load          fraction (0 < x < 1, required)
rollback_config    min_confidence (0..1, 0.3): roll back only when the top RCA suspect is
                   at least this confident
=================  ===========================================================================

Reading a file is the only I/O here (:func:`load_runbook`). The YAML is read with the safe
loader only, and hostile input is bounded: more than 1 MiB, deeper than 50 levels, or more
than 200,000 nodes once aliases are expanded is refused before any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails

from stanch.core._runbook_schema import (
    ACTION_MODELS,
    CHILD_MODELS,
    ActionModel,
    DefaultsModel,
    RunbookModel,
)
from stanch.core._runbook_yaml import field_path, line_of, read_yaml
from stanch.core.actions import ActionKind, ActionMode
from stanch.core.alerts import Alert, AlertKind
from stanch.core.durations import parse_duration as parse_duration  # part of this API
from stanch.core.durations import short
from stanch.core.errors import RunbookError
from stanch.core.severity import Severity

MAX_RUNBOOK_BYTES: Final = 1024 * 1024

# --------------------------------------------------------------------------- parsed values


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action a rule asks for; ``target`` None means "derive it from the alert"."""

    kind: ActionKind
    mode: ActionMode
    ttl_s: float
    verify_within_s: float
    target: str | None
    params: dict[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Which alerts a rule is for. An empty condition matches anything."""

    kinds: frozenset[AlertKind]
    min_severity: Severity | None
    services: tuple[str, ...]
    routes: tuple[str, ...]
    labels: dict[str, str] = field(hash=False)

    def matches(self, alert: Alert) -> bool:
        """True when every condition given holds; globs are case-sensitive on every OS."""
        if self.kinds and alert.kind not in self.kinds:
            return False
        if self.min_severity is not None and alert.severity < self.min_severity:
            return False
        if self.services and not any(fnmatchcase(alert.service, g) for g in self.services):
            return False
        if self.routes and not any(fnmatchcase(alert.route, g) for g in self.routes):
            return False
        return all(alert.labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True, slots=True)
class Rule:
    """A named condition and the actions it calls for; ``stop`` ends the search when it matches."""

    name: str
    description: str
    match: RuleMatch
    actions: tuple[ActionSpec, ...]
    stop: bool


@dataclass(frozen=True, slots=True)
class Runbook:
    """The parsed rules, in file order; ``source`` names where they came from."""

    rules: tuple[Rule, ...]
    source: str

    def actions_for(self, alert: Alert) -> list[tuple[Rule, ActionSpec]]:
        """Actions every matching rule asks for, in file order, up to the first ``stop`` match."""
        found: list[tuple[Rule, ActionSpec]] = []
        for rule in self.rules:
            if not rule.match.matches(alert):
                continue
            found.extend((rule, spec) for spec in rule.actions)
            if rule.stop:
                break
        return found


def _to_runbook(model: RunbookModel, source: str) -> Runbook:
    rules = tuple(
        Rule(
            name=rule.name,
            description=rule.description,
            match=RuleMatch(
                kinds=frozenset(rule.match.kinds),
                min_severity=rule.match.min_severity,
                services=tuple(rule.match.services or ()),
                routes=tuple(rule.match.routes or ()),
                labels=dict(rule.match.labels),
            ),
            actions=tuple(_to_spec(action, model.defaults) for action in rule.actions),
            stop=rule.stop,
        )
        for rule in model.rules
    )
    return Runbook(rules=rules, source=source)


def _to_spec(action: ActionModel, defaults: DefaultsModel) -> ActionSpec:
    params = action.params.model_dump()
    if "burst" in params and params["burst"] is None:
        params["burst"] = max(1, int(params["rate"]))
    return ActionSpec(
        kind=ActionKind(action.kind),
        mode=action.mode,
        ttl_s=action.ttl if action.ttl is not None else defaults.ttl,
        verify_within_s=(
            action.verify_within if action.verify_within is not None else defaults.verify_within
        ),
        target=action.target,
        params=params,
    )


# --------------------------------------------------------------------------- loading


def load_runbook(path: str | Path) -> Runbook:
    """The runbook in ``path``; raises RunbookError listing every problem (unreadable too)."""
    name = str(path)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_RUNBOOK_BYTES + 1)  # never read more than the cap allows
    except OSError as exc:
        raise RunbookError([f"{name}:1: (file): cannot read: {exc.strerror or exc}"]) from exc
    if len(raw) > MAX_RUNBOOK_BYTES:
        raise RunbookError([_too_big(name)])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RunbookError([f"{name}:{line}: (file): not valid UTF-8"]) from None
    return load_runbook_text(text, name)


def load_runbook_text(text: str, filename: str = "<runbook>") -> Runbook:
    """The runbook in ``text``; raises RunbookError listing every problem found, by line."""
    if len(text) > MAX_RUNBOOK_BYTES or (
        len(text.encode("utf-8", "surrogatepass")) > MAX_RUNBOOK_BYTES
    ):
        raise RunbookError([_too_big(filename)])
    root, data, problems = read_yaml(text, filename)
    if root is None or data is None:
        raise RunbookError([f"{filename}:1: (root): empty runbook; expected version and rules"])
    if not isinstance(data, dict):
        line = root.start_mark.line + 1
        raise RunbookError(
            [
                f"{filename}:{line}: (root): expected a mapping with version and rules, "
                f"not a {type(data).__name__}"
            ]
        )
    model: RunbookModel | None = None
    try:
        model = RunbookModel.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problem(root, err, filename) for err in exc.errors(include_url=False))
    problems.extend(_duplicate_rule_names(root, data, filename))
    if problems or model is None:
        problems.sort(key=lambda p: p[0])  # stable: same-line problems keep their order
        raise RunbookError([message for _, message in problems])
    return _to_runbook(model, filename)


def _too_big(filename: str) -> str:
    return f"{filename}:1: (file): runbook is larger than the {MAX_RUNBOOK_BYTES}-byte limit"


def _duplicate_rule_names(
    root: yaml.Node, data: dict[Any, Any], filename: str
) -> list[tuple[int, str]]:
    rules = data.get("rules")
    if not isinstance(rules, list):
        return []
    problems: list[tuple[int, str]] = []
    first: dict[str, int] = {}
    for i, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, dict) else None
        if not isinstance(name, str):
            continue
        if name not in first:
            first[name] = i
            continue
        line = line_of(root, ("rules", i, "name"))
        j = first[name]
        problems.append(
            (
                line,
                f"{filename}:{line}: rules[{i}].name: duplicate rule name {name!r} "
                f"(also rules[{j}], line {line_of(root, ('rules', j, 'name'))})",
            )
        )
    return problems


def _problem(root: yaml.Node, err: ErrorDetails, filename: str) -> tuple[int, str]:
    """One Pydantic error as ``(line, "file:line: path: message")``."""
    raw: tuple[str | int, ...] = tuple(err["loc"])
    # Pydantic puts the discriminated union's tag in the loc (actions[0].circuit_break.params);
    # it is not a YAML key, so it is dropped from the path and remembered for the hints.
    kind_tag = next(
        (
            part
            for i, part in enumerate(raw)
            if i >= 2 and raw[i - 2] == "actions" and isinstance(raw[i - 1], int)
            if isinstance(part, str) and part in ACTION_MODELS
        ),
        None,
    )
    at = raw.index(kind_tag) if kind_tag is not None else len(raw)
    loc = raw[:at] + raw[at + 1 :]
    kinds = ", ".join(ActionKind)
    message = str(err["msg"])
    if err["type"] == "union_tag_invalid":
        loc = (*loc, "kind")
        message = f"unknown action kind {short(err['ctx']['tag'])}; expected one of: {kinds}"
    elif err["type"] == "union_tag_not_found":
        loc = (*loc, "kind")
        message = f"Field required; one of: {kinds}"
    elif err["type"] == "value_error":
        message = str(err["ctx"]["error"])
    elif err["type"] == "extra_forbidden":
        allowed = _allowed_fields(raw[:-1], kind_tag)
        message = "unknown field" + (f"; expected one of: {', '.join(allowed)}" if allowed else "")
    line = line_of(root, loc)
    return line, f"{filename}:{line}: {field_path(loc)}: {message}"


def _allowed_fields(loc: tuple[str | int, ...], kind_tag: str | None) -> list[str]:
    """Field names of the model at ``loc``, to answer an unknown field with the known ones."""
    model: type[BaseModel] | None = RunbookModel
    for part in loc:
        if part == kind_tag:  # the tag (after ``actions[i]``) picks the action's model
            model = ACTION_MODELS[part]
        elif isinstance(part, int) or model is None:
            continue
        elif part == "params" and issubclass(model, ActionModel):
            params = model.model_fields["params"].annotation
            model = params if isinstance(params, type) and issubclass(params, BaseModel) else None
        else:
            model = CHILD_MODELS.get((model, part))
    return sorted(model.model_fields) if model is not None else []
