"""Enforcer: a policy applied to single requests, with live state that survives updates."""

from __future__ import annotations

import json

import pytest

from stanch.core.actions import Action, ActionKind, ActionState
from stanch.core.breaker import BreakerState
from stanch.core.enforcement import Enforcer, Verdict
from stanch.core.policy import Policy

from .factories import make_action

ROUTE = "POST /checkout"


def policy(*actions: Action, version: int = 1) -> Policy:
    return Policy.from_actions("shop", version, actions)


def breaker_action(**changes: object) -> Action:
    params = {"open_for": 10.0, "probes": 2, "failure_ratio": 0.5, "min_calls": 4}
    return make_action("B1", params=params, **changes)  # type: ignore[arg-type]


def client_throttle(stage: int = 0, **params: object) -> Action:
    return make_action(
        "T1",
        kind=ActionKind.THROTTLE_CLIENT,
        target="bot",
        params={"rate": 1.0, "burst": 1, **params},
        stage=stage,
        state=ActionState.LIFTING if stage else ActionState.APPLIED,
    )


def test_empty_policy_lets_everything_through() -> None:
    """With no rules the enforcer is inactive and answers None."""
    enforcer = Enforcer(Policy("shop"))
    assert not enforcer.active
    assert enforcer.decide(0.0, ROUTE, "bot") is None
    assert enforcer.breaker_state(ROUTE, 0.0) is None
    enforcer.record(0.0, ROUTE, 500)  # no breaker: nothing to feed, nothing raised


def test_open_breaker_answers_503_with_retry_after() -> None:
    """A forced-open breaker refuses the route with a 503 and the seconds until a probe."""
    enforcer = Enforcer(policy(breaker_action()), now=100.0)
    assert enforcer.active
    verdict = enforcer.decide(103.5, ROUTE, "")
    assert verdict is not None
    assert (verdict.status, verdict.reason) == (503, "breaker")
    assert verdict.retry_after == pytest.approx(6.5)
    assert dict(verdict.headers())[b"retry-after"] == b"7"
    body = json.loads(verdict.body)
    assert body == {"error": "circuit open", "incident": "INC-1", "route": ROUTE}
    assert enforcer.decide(103.5, "GET /other", "") is None


def test_breaker_probes_after_open_for() -> None:
    """After open_for the breaker turns half-open and admits its probes only."""
    enforcer = Enforcer(policy(breaker_action()), now=0.0)
    assert enforcer.decide(10.0, ROUTE, "") is None
    assert enforcer.decide(10.0, ROUTE, "") is None
    assert enforcer.breaker_state(ROUTE, 10.0) is BreakerState.HALF_OPEN
    refused = enforcer.decide(10.0, ROUTE, "")
    assert refused is not None
    assert refused.reason == "breaker"
    enforcer.record(10.1, ROUTE, 200)
    enforcer.record(10.2, ROUTE, 200)
    assert enforcer.breaker_state(ROUTE, 10.2) is BreakerState.CLOSED


def test_record_trips_a_breaker_that_is_not_forced_open() -> None:
    """At stage 1 the breaker starts closed and trips on recorded 5xx."""
    enforcer = Enforcer(policy(breaker_action(stage=1, state=ActionState.LIFTING)), now=0.0)
    assert enforcer.decide(0.1, ROUTE, "") is None
    for i in range(4):
        enforcer.record(0.2 + i / 10, ROUTE, 503)
    verdict = enforcer.decide(1.0, ROUTE, "")
    assert verdict is not None
    assert verdict.reason == "breaker"


def test_client_throttle_answers_429_for_that_client_only() -> None:
    """A throttled client gets 429 past its rate; other clients pass."""
    enforcer = Enforcer(policy(client_throttle()))
    assert enforcer.decide(0.0, ROUTE, "bot") is None
    verdict = enforcer.decide(0.1, ROUTE, "bot")
    assert verdict is not None
    assert (verdict.status, verdict.reason) == (429, "throttle")
    assert verdict.retry_after == pytest.approx(0.9)
    assert json.loads(verdict.body)["client"] == "bot"
    for _ in range(100):
        assert enforcer.decide(0.1, ROUTE, "human") is None
        assert enforcer.decide(0.1, ROUTE, "") is None
    assert enforcer.decide(1.0, ROUTE, "bot") is None


def test_client_throttle_scoped_to_one_route() -> None:
    """A throttle with a route only limits that route."""
    enforcer = Enforcer(policy(client_throttle(route="GET /search")))
    assert enforcer.decide(0.0, "GET /search", "bot") is None
    assert enforcer.decide(0.0, "GET /search", "bot") is not None
    for _ in range(10):
        assert enforcer.decide(0.0, ROUTE, "bot") is None


def test_blocked_client_gets_its_status() -> None:
    """A blocked client is refused on every route with the block status."""
    action = make_action("K1", kind=ActionKind.BLOCK_CLIENT, target="bot", params={"status": 451})
    enforcer = Enforcer(policy(action))
    for route in (ROUTE, "GET /anything"):
        verdict = enforcer.decide(0.0, route, "bot")
        assert verdict is not None
        assert (verdict.status, verdict.reason) == (451, "block")
        assert b"retry-after" not in dict(verdict.headers())
    assert enforcer.decide(0.0, ROUTE, "other") is None


def test_disabled_route_uses_its_body() -> None:
    """A disabled route answers its configured status and body."""
    action = make_action(kind=ActionKind.DISABLE_ROUTE, params={"status": 503, "body": '{"x":1}'})
    verdict = Enforcer(policy(action)).decide(0.0, ROUTE, "")
    assert verdict is not None
    assert (verdict.status, verdict.reason, verdict.body) == (503, "disabled", b'{"x":1}')
    headers = dict(verdict.headers())
    assert headers[b"content-length"] == b"7"
    assert headers[b"x-stanch-enforced"] == b"disabled"


def test_route_throttle() -> None:
    """A route throttle limits everyone on the route together."""
    action = make_action("T9", kind=ActionKind.THROTTLE_ROUTE, params={"rate": 2.0, "burst": 2})
    enforcer = Enforcer(policy(action))
    verdicts = [enforcer.decide(0.0, ROUTE, f"c{i}") for i in range(4)]
    assert [v is None for v in verdicts] == [True, True, False, False]
    assert verdicts[2] is not None
    assert verdicts[2].status == 429


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_shed_fraction_is_respected(fraction: float) -> None:
    """Shedding refuses about `fraction` of the route's requests, with 503 'shed'."""
    action = make_action(kind=ActionKind.SHED_LOAD, params={"fraction": fraction})
    enforcer = Enforcer(policy(action))
    verdicts = [enforcer.decide(i / 1000, ROUTE, "") for i in range(1000)]
    shed = [v for v in verdicts if v is not None]
    assert len(shed) == pytest.approx(1000 * fraction, abs=2)
    assert {(v.status, v.reason) for v in shed} == {(503, "shed")}


def test_breaker_state_survives_an_unchanged_rule() -> None:
    """Re-applying a policy whose breaker rule is unchanged keeps the live breaker."""
    first = policy(breaker_action(), version=1)
    enforcer = Enforcer(first, now=0.0)
    assert enforcer.decide(10.0, ROUTE, "") is None  # half-open: first probe admitted
    assert enforcer.breaker_state(ROUTE, 10.0) is BreakerState.HALF_OPEN
    other = make_action("K1", kind=ActionKind.BLOCK_CLIENT, target="bot")
    enforcer.apply(policy(breaker_action(), other, version=2), now=10.5)
    assert enforcer.breaker_state(ROUTE, 10.5) is BreakerState.HALF_OPEN
    assert enforcer.policy.version == 2


def test_breaker_is_rebuilt_when_its_rule_changes() -> None:
    """A new breaker action (different id) starts a fresh breaker, forced open again."""
    enforcer = Enforcer(policy(breaker_action()), now=0.0)
    enforcer.decide(10.0, ROUTE, "")
    replacement = make_action("B2", params={"open_for": 10.0})
    enforcer.apply(policy(replacement, version=2), now=10.5)
    assert enforcer.breaker_state(ROUTE, 10.5) is BreakerState.OPEN


def test_shed_accumulator_survives_apply() -> None:
    """The shed accumulator carries over a policy update, keeping the exact fraction."""
    action = make_action(kind=ActionKind.SHED_LOAD, params={"fraction": 0.5})
    enforcer = Enforcer(policy(action))
    assert enforcer.decide(0.0, ROUTE, "") is None  # accumulator at 0.5
    enforcer.apply(policy(action, version=2), now=0.1)
    assert enforcer.decide(0.2, ROUTE, "") is not None


def test_throttle_ramp_keeps_the_limiter_and_its_debt() -> None:
    """A ramp-up (same action, next stage) keeps the client's limiter with the new rate."""
    enforcer = Enforcer(policy(client_throttle(stage=0)))
    assert enforcer.decide(0.0, ROUTE, "bot") is None
    assert enforcer.decide(0.0, ROUTE, "bot") is not None  # debt: next slot at t=1
    limiter = enforcer._clients["bot"].limiter
    enforcer.apply(policy(client_throttle(stage=1), version=2), now=0.0)
    assert enforcer._clients["bot"].limiter is limiter
    assert limiter is not None
    assert limiter.spec.rate == 2.0
    # A fresh limiter at the new spec (burst 2) would admit two requests right now; the kept
    # one remembers the request already admitted, so it admits fewer.
    admitted = sum(enforcer.decide(0.0, ROUTE, "bot") is None for _ in range(5))
    assert admitted < 2
    refused = enforcer.decide(0.0, ROUTE, "bot")
    assert refused is not None
    assert 0.0 < refused.retry_after <= 0.5  # the new, faster rate applies
    assert enforcer.decide(0.5, ROUTE, "bot") is None


def test_removed_rules_stop_applying() -> None:
    """Applying an empty policy lifts every rule and deactivates the enforcer."""
    enforcer = Enforcer(policy(breaker_action(), client_throttle()))
    enforcer.apply(Policy("shop", 2), now=1.0)
    assert not enforcer.active
    assert enforcer.decide(1.0, ROUTE, "bot") is None


def test_verdict_headers_round_retry_after_up() -> None:
    """Retry-After is a whole number of seconds, at least 1, only when positive."""
    assert dict(Verdict(429, "throttle", b"{}", 0.2).headers())[b"retry-after"] == b"1"
    assert dict(Verdict(429, "throttle", b"{}", 2.01).headers())[b"retry-after"] == b"3"
    assert b"retry-after" not in dict(Verdict(503, "shed", b"{}").headers())
