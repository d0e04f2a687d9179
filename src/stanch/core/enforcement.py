"""Applying a policy to one request: O(1), allocation-light, and never raising on the hot path.

The :class:`Enforcer` turns the immutable :class:`Policy` into live state (breakers, GCRA
limiters, shed accumulators) and answers ``decide(now, route, client)`` with ``None`` (let the
app answer) or a :class:`Verdict` (answer for it). Live state survives policy updates when the
rule that created it is unchanged, so a new policy version does not reset a half-open breaker.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from stanch.core.breaker import BreakerConfig, BreakerState, CircuitBreaker
from stanch.core.limiter import Gcra, RateSpec
from stanch.core.policy import BreakerRule, ClientRule, Policy, RateRule, RouteRule


@dataclass(frozen=True, slots=True)
class Verdict:
    """Stanch answers instead of the app. ``reason`` goes on the recorded event."""

    status: int
    reason: str
    body: bytes
    retry_after: float = 0.0

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            (b"x-stanch-enforced", self.reason.encode()),
        ]
        if self.retry_after > 0:
            headers.append((b"retry-after", str(max(1, math.ceil(self.retry_after))).encode()))
        return headers


def _body(error: str, incident: str, **extra: object) -> bytes:
    return json.dumps({"error": error, "incident": incident, **extra}).encode()


class _RouteState:
    __slots__ = (
        "breaker",
        "breaker_id",
        "disabled",
        "open_verdict",
        "rule",
        "shed_acc",
        "shed_verdict",
        "throttle",
        "throttle_id",
        "throttle_verdict",
    )

    def __init__(self, rule: RouteRule, now: float, old: _RouteState | None) -> None:
        self.rule = rule
        incident = rule.incident_id
        self.disabled: Verdict | None = None
        if rule.disabled_status is not None:
            body = rule.disabled_body.encode() or _body(
                "route disabled", incident, route=rule.route
            )
            self.disabled = Verdict(rule.disabled_status, "disabled", body)
        self.breaker: CircuitBreaker | None = None
        self.breaker_id = ""
        if rule.breaker is not None:
            self.breaker_id = _breaker_identity(rule.breaker)
            if old is not None and old.breaker is not None and old.breaker_id == self.breaker_id:
                self.breaker = old.breaker
            else:
                self.breaker = CircuitBreaker(
                    _breaker_config(rule.breaker), now=now, start_open=rule.breaker.start_open
                )
        self.open_verdict = _body("circuit open", incident, route=rule.route)
        self.throttle: Gcra | None = None
        self.throttle_id = ""
        if rule.throttle is not None:
            self.throttle = _reuse_limiter(
                rule.throttle, old.throttle if old else None, old.throttle_id if old else "", now
            )
            self.throttle_id = rule.throttle.action_id
        self.throttle_verdict = _body("route throttled", incident, route=rule.route)
        self.shed_acc: float = old.shed_acc if old is not None else 0.0
        self.shed_verdict = Verdict(503, "shed", _body("load shed", incident, route=rule.route))


class _ClientState:
    __slots__ = ("blocked", "limiter", "limiter_id", "route", "throttle_body")

    def __init__(self, rule: ClientRule, old: _ClientState | None, now: float) -> None:
        self.blocked: Verdict | None = None
        if rule.blocked_status is not None:
            body = _body("client blocked", rule.incident_id, client=rule.client)
            self.blocked = Verdict(rule.blocked_status, "block", body)
        self.limiter: Gcra | None = None
        self.limiter_id = ""
        if rule.throttle is not None:
            self.limiter = _reuse_limiter(
                rule.throttle, old.limiter if old else None, old.limiter_id if old else "", now
            )
            self.limiter_id = rule.throttle.action_id
        self.route = rule.route
        self.throttle_body = _body("client throttled", rule.incident_id, client=rule.client)


def _breaker_identity(rule: BreakerRule) -> str:
    return f"{rule.action_id}:{rule.open_for_s}:{rule.probes}:{rule.failure_ratio}:{rule.min_calls}"


def _breaker_config(rule: BreakerRule) -> BreakerConfig:
    return BreakerConfig(
        failure_ratio=rule.failure_ratio,
        min_calls=rule.min_calls,
        open_for_s=rule.open_for_s,
        half_open_probes=rule.probes,
        successes_to_close=rule.probes,
    )


def _reuse_limiter(rule: RateRule, old: Gcra | None, old_id: str, now: float) -> Gcra:
    spec = RateSpec(rule.rate, max(1, rule.burst))
    if old is not None and old_id == rule.action_id:
        old.set_spec(spec, now)  # a throttle ramp-up keeps the client's debt, at the new rate
        return old
    return Gcra(spec)


class Enforcer:
    """Live enforcement state for one service's policy."""

    __slots__ = ("_clients", "_routes", "active", "policy")

    def __init__(self, policy: Policy, now: float = 0.0) -> None:
        self._routes: dict[str, _RouteState] = {}
        self._clients: dict[str, _ClientState] = {}
        self.policy = policy
        self.active = False
        self.apply(policy, now)

    def apply(self, policy: Policy, now: float) -> None:
        """Adopt a new policy version, keeping live state whose rule is unchanged."""
        self._routes = {
            route: _RouteState(rule, now, self._routes.get(route))
            for route, rule in policy.routes.items()
        }
        self._clients = {
            client: _ClientState(rule, self._clients.get(client), now)
            for client, rule in policy.clients.items()
        }
        self.policy = policy
        self.active = not policy.is_empty

    def decide(self, now: float, route: str, client: str) -> Verdict | None:
        """None lets the request through; a Verdict answers it. Runs on every request."""
        if client and self._clients:
            cstate = self._clients.get(client)
            if cstate is not None:
                if cstate.blocked is not None:
                    return cstate.blocked
                if cstate.limiter is not None and (cstate.route is None or cstate.route == route):
                    wait = cstate.limiter.allow(now)
                    if wait > 0.0:
                        return Verdict(429, "throttle", cstate.throttle_body, wait)
        rstate = self._routes.get(route)
        if rstate is None:
            return None
        if rstate.disabled is not None:
            return rstate.disabled
        if rstate.throttle is not None:
            wait = rstate.throttle.allow(now)
            if wait > 0.0:
                return Verdict(429, "throttle", rstate.throttle_verdict, wait)
        fraction = rstate.rule.shed_fraction
        if fraction > 0.0:
            rstate.shed_acc += fraction
            if rstate.shed_acc >= 1.0:
                rstate.shed_acc -= 1.0
                return rstate.shed_verdict
        # The breaker comes last: in half-open, allow() reserves a probe slot that only the
        # app's answer (record) releases, so nothing after it may refuse the request.
        breaker = rstate.breaker
        if breaker is not None and not breaker.allow(now):
            return Verdict(503, "breaker", rstate.open_verdict, breaker.retry_after(now))
        return None

    def record(self, now: float, route: str, status: int) -> None:
        """Feed the outcome of a request the app answered to the route's breaker."""
        rstate = self._routes.get(route)
        if rstate is not None and rstate.breaker is not None:
            rstate.breaker.record(now, status < 500)

    def breaker_state(self, route: str, now: float) -> BreakerState | None:
        rstate = self._routes.get(route)
        if rstate is None or rstate.breaker is None:
            return None
        return rstate.breaker.state_at(now)
