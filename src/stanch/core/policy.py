"""The isolation policy: an immutable snapshot of what enforcement points must do right now.

It is derived from the active actions alone (never edited by hand), carries a version so agents
can tell it changed, and serializes to plain JSON for the store and for agents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from stanch.core.actions import Action, ActionKind

DEFAULT_DISABLED_STATUS = 503
DEFAULT_BLOCK_STATUS = 403


@dataclass(frozen=True, slots=True)
class BreakerRule:
    action_id: str
    start_open: bool
    open_for_s: float = 30.0
    probes: int = 5
    failure_ratio: float = 0.5
    min_calls: int = 10


@dataclass(frozen=True, slots=True)
class RateRule:
    action_id: str
    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class RouteRule:
    """Everything the policy says about one route (``"METHOD /template"``)."""

    route: str
    incident_id: str
    breaker: BreakerRule | None = None
    disabled_status: int | None = None
    disabled_body: str = ""
    throttle: RateRule | None = None
    shed_fraction: float = 0.0


@dataclass(frozen=True, slots=True)
class ClientRule:
    """What the policy says about one client; ``route`` scopes a throttle to one route."""

    client: str
    incident_id: str
    blocked_status: int | None = None
    throttle: RateRule | None = None
    route: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    service: str
    version: int = 0
    routes: Mapping[str, RouteRule] = field(default_factory=dict)
    clients: Mapping[str, ClientRule] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.routes and not self.clients

    @classmethod
    def from_actions(cls, service: str, version: int, actions: Iterable[Action]) -> Policy:
        """The policy that the active actions of ``service`` add up to."""
        routes: dict[str, RouteRule] = {}
        clients: dict[str, ClientRule] = {}
        for action in sorted(actions, key=lambda a: (a.created_at, a.id)):
            if not action.is_active or action.service != service:
                continue
            _apply(action, routes, clients)
        return cls(service, version, routes, clients)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        routes = {}
        for key, raw in data.get("routes", {}).items():
            raw = dict(raw)
            if raw.get("breaker"):
                raw["breaker"] = BreakerRule(**raw["breaker"])
            if raw.get("throttle"):
                raw["throttle"] = RateRule(**raw["throttle"])
            routes[key] = RouteRule(**raw)
        clients = {}
        for key, raw in data.get("clients", {}).items():
            raw = dict(raw)
            if raw.get("throttle"):
                raw["throttle"] = RateRule(**raw["throttle"])
            clients[key] = ClientRule(**raw)
        return cls(str(data["service"]), int(data.get("version", 0)), routes, clients)


def _apply(action: Action, routes: dict[str, RouteRule], clients: dict[str, ClientRule]) -> None:
    p = action.params
    kind = action.kind
    if kind.targets_client:
        old_client = clients.get(action.target) or ClientRule(action.target, action.incident_id)
        if kind is ActionKind.BLOCK_CLIENT:
            status = int(p.get("status", DEFAULT_BLOCK_STATUS))
            clients[action.target] = replace(old_client, blocked_status=status)
        else:
            clients[action.target] = replace(
                old_client, throttle=_rate_rule(action), route=p.get("route")
            )
        return
    if kind is ActionKind.ROLLBACK_CONFIG:
        return  # acts on the config store, not on traffic
    old = routes.get(action.target) or RouteRule(action.target, action.incident_id)
    if kind is ActionKind.CIRCUIT_BREAK:
        rule = BreakerRule(
            action.id,
            start_open=action.stage == 0,
            open_for_s=float(p.get("open_for", 30.0)),
            probes=int(p.get("probes", 5)),
            failure_ratio=float(p.get("failure_ratio", 0.5)),
            min_calls=int(p.get("min_calls", 10)),
        )
        routes[action.target] = replace(old, breaker=rule)
    elif kind is ActionKind.DISABLE_ROUTE:
        status = int(p.get("status", DEFAULT_DISABLED_STATUS))
        routes[action.target] = replace(
            old, disabled_status=status, disabled_body=str(p.get("body", ""))
        )
    elif kind is ActionKind.THROTTLE_ROUTE:
        routes[action.target] = replace(old, throttle=_rate_rule(action))
    elif kind is ActionKind.SHED_LOAD:
        # Staged lifting halves the shed fraction at each stage.
        fraction = float(p["fraction"]) / (2.0**action.stage)
        routes[action.target] = replace(old, shed_fraction=fraction)


def _rate_rule(action: Action) -> RateRule:
    """The throttle in force; staged lifting ramps the rate up by ``ramp`` at each stage."""
    p = action.params
    factor = float(p.get("ramp", 2.0)) ** action.stage
    rate = float(p["rate"]) * factor
    burst = max(1, int(int(p.get("burst", 1)) * factor))
    return RateRule(action.id, rate, burst)
