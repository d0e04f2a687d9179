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
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from stanch.core._runbook_yaml import field_path, line_of, read_yaml
from stanch.core.actions import ActionKind, ActionMode
from stanch.core.alerts import Alert, AlertKind
from stanch.core.durations import duration_field, short
from stanch.core.durations import parse_duration as parse_duration  # part of this API
from stanch.core.errors import RunbookError
from stanch.core.severity import Severity

RUNBOOK_VERSION: Final = 1
MAX_RUNBOOK_BYTES: Final = 1024 * 1024
DEFAULT_TTL_S: Final = 30 * 60.0
DEFAULT_VERIFY_WITHIN_S: Final = 2 * 60.0

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


# --------------------------------------------------------------------------- schema

_Duration = Annotated[float, BeforeValidator(duration_field)]
_PositiveInt = Annotated[int, Strict(), Field(ge=1)]
_HttpStatus = Annotated[int, Strict(), Field(ge=400, le=599)]
_Rate = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
_NonEmpty = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CircuitBreakParams(_Strict):
    open_for: _Duration = 30.0
    probes: _PositiveInt = 5
    failure_ratio: Annotated[float, Strict(), Field(gt=0, le=1)] = 0.5
    min_calls: _PositiveInt = 10


class _DisableRouteParams(_Strict):
    status: _HttpStatus = 503
    body: str = '{"error": "this route is temporarily disabled"}'


class _ThrottleRouteParams(_Strict):
    rate: _Rate
    burst: _PositiveInt | None = None


class _ThrottleClientParams(_ThrottleRouteParams):
    route: _NonEmpty | None = None


class _BlockClientParams(_Strict):
    status: _HttpStatus = 403


class _ShedLoadParams(_Strict):
    fraction: Annotated[float, Strict(), Field(gt=0, lt=1)]


class _RollbackConfigParams(_Strict):
    min_confidence: Annotated[float, Strict(), Field(ge=0, le=1)] = 0.3


class _ActionBase(_Strict):
    kind: ActionKind  # narrowed to one Literal per subclass: the union's discriminator
    mode: ActionMode
    ttl: _Duration | None = None
    verify_within: _Duration | None = None
    target: _NonEmpty | None = None
    params: _Strict

    @model_validator(mode="before")
    @classmethod
    def _no_params_means_defaults(cls, data: Any) -> Any:
        # A missing params block still validates the kind's params, so a required one
        # (throttle rate, shed fraction) is reported as missing rather than silently absent.
        if isinstance(data, dict) and data.get("params") is None:
            return {**data, "params": {}}
        return data


class _CircuitBreak(_ActionBase):
    kind: Literal[ActionKind.CIRCUIT_BREAK]
    params: _CircuitBreakParams


class _DisableRoute(_ActionBase):
    kind: Literal[ActionKind.DISABLE_ROUTE]
    params: _DisableRouteParams


class _ThrottleRoute(_ActionBase):
    kind: Literal[ActionKind.THROTTLE_ROUTE]
    params: _ThrottleRouteParams


class _ThrottleClient(_ActionBase):
    kind: Literal[ActionKind.THROTTLE_CLIENT]
    params: _ThrottleClientParams


class _BlockClient(_ActionBase):
    kind: Literal[ActionKind.BLOCK_CLIENT]
    params: _BlockClientParams


class _ShedLoad(_ActionBase):
    kind: Literal[ActionKind.SHED_LOAD]
    params: _ShedLoadParams


class _RollbackConfig(_ActionBase):
    kind: Literal[ActionKind.ROLLBACK_CONFIG]
    params: _RollbackConfigParams


_AnyAction = Annotated[
    _CircuitBreak
    | _DisableRoute
    | _ThrottleRoute
    | _ThrottleClient
    | _BlockClient
    | _ShedLoad
    | _RollbackConfig,
    Field(discriminator="kind"),
]
_ACTION_MODELS: Final[dict[str, type[_ActionBase]]] = {
    ActionKind.CIRCUIT_BREAK: _CircuitBreak,
    ActionKind.DISABLE_ROUTE: _DisableRoute,
    ActionKind.THROTTLE_ROUTE: _ThrottleRoute,
    ActionKind.THROTTLE_CLIENT: _ThrottleClient,
    ActionKind.BLOCK_CLIENT: _BlockClient,
    ActionKind.SHED_LOAD: _ShedLoad,
    ActionKind.ROLLBACK_CONFIG: _RollbackConfig,
}


class _Match(_Strict):
    kinds: list[AlertKind] = Field(default_factory=list)
    min_severity: Severity | None = None
    services: list[_NonEmpty] | None = None
    routes: list[_NonEmpty] | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class _Rule(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=100)]
    description: str = ""
    match: _Match
    actions: list[_AnyAction] = Field(default_factory=list)
    stop: Annotated[bool, Strict()] = False


class _Defaults(_Strict):
    ttl: _Duration = DEFAULT_TTL_S
    verify_within: _Duration = DEFAULT_VERIFY_WITHIN_S


class _Runbook(_Strict):
    version: int
    defaults: _Defaults = Field(default_factory=_Defaults)
    rules: list[_Rule]

    @field_validator("version", mode="before")
    @classmethod
    def _known_version(cls, value: object) -> object:
        if isinstance(value, bool) or value != RUNBOOK_VERSION:
            raise ValueError(
                f"unsupported runbook version {short(value)}; "
                f"this Stanch reads version {RUNBOOK_VERSION}"
            )
        return value


# Which model a field name leads to, so an unknown field can be answered with the known ones.
_CHILD_MODELS: Final[dict[tuple[type[BaseModel], str], type[BaseModel]]] = {
    (_Runbook, "defaults"): _Defaults,
    (_Runbook, "rules"): _Rule,
    (_Rule, "match"): _Match,
}


def _to_runbook(model: _Runbook, source: str) -> Runbook:
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


def _to_spec(action: _ActionBase, defaults: _Defaults) -> ActionSpec:
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
    model: _Runbook | None = None
    try:
        model = _Runbook.model_validate(data)
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
            if isinstance(part, str) and part in _ACTION_MODELS
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
    model: type[BaseModel] | None = _Runbook
    for part in loc:
        if part == kind_tag:  # the tag (after ``actions[i]``) picks the action's model
            model = _ACTION_MODELS[part]
        elif isinstance(part, int) or model is None:
            continue
        elif part == "params" and issubclass(model, _ActionBase):
            params = model.model_fields["params"].annotation
            model = params if isinstance(params, type) and issubclass(params, BaseModel) else None
        else:
            model = _CHILD_MODELS.get((model, part))
    return sorted(model.model_fields) if model is not None else []
