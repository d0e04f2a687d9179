"""The runbook file's schema: the pydantic models a YAML runbook is validated against.

Kept apart from :mod:`stanch.core.runbook` (the parsed values and the loader) because it is
long and only the loader reads it. The models are strict and frozen and forbid unknown
fields, so a typo (``verfy_within``) is an error naming the line, never a silently ignored
setting; the format itself is documented in :mod:`stanch.core.runbook`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

from stanch.core.actions import ActionKind, ActionMode
from stanch.core.alerts import AlertKind
from stanch.core.durations import duration_field, short
from stanch.core.severity import Severity

RUNBOOK_VERSION: Final = 1
DEFAULT_TTL_S: Final = 30 * 60.0
DEFAULT_VERIFY_WITHIN_S: Final = 2 * 60.0

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


class ActionModel(_Strict):
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


class _CircuitBreak(ActionModel):
    kind: Literal[ActionKind.CIRCUIT_BREAK]
    params: _CircuitBreakParams


class _DisableRoute(ActionModel):
    kind: Literal[ActionKind.DISABLE_ROUTE]
    params: _DisableRouteParams


class _ThrottleRoute(ActionModel):
    kind: Literal[ActionKind.THROTTLE_ROUTE]
    params: _ThrottleRouteParams


class _ThrottleClient(ActionModel):
    kind: Literal[ActionKind.THROTTLE_CLIENT]
    params: _ThrottleClientParams


class _BlockClient(ActionModel):
    kind: Literal[ActionKind.BLOCK_CLIENT]
    params: _BlockClientParams


class _ShedLoad(ActionModel):
    kind: Literal[ActionKind.SHED_LOAD]
    params: _ShedLoadParams


class _RollbackConfig(ActionModel):
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
ACTION_MODELS: Final[dict[str, type[ActionModel]]] = {
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


class DefaultsModel(_Strict):
    ttl: _Duration = DEFAULT_TTL_S
    verify_within: _Duration = DEFAULT_VERIFY_WITHIN_S


class RunbookModel(_Strict):
    version: int
    defaults: DefaultsModel = Field(default_factory=DefaultsModel)
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
CHILD_MODELS: Final[dict[tuple[type[BaseModel], str], type[BaseModel]]] = {
    (RunbookModel, "defaults"): DefaultsModel,
    (RunbookModel, "rules"): _Rule,
    (_Rule, "match"): _Match,
}
