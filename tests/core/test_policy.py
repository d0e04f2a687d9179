"""Policy: derived from active actions, staged by recovery, serialized for agents."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.actions import ActionKind, ActionState
from stanch.core.policy import (
    DEFAULT_BLOCK_STATUS,
    DEFAULT_DISABLED_STATUS,
    BreakerRule,
    ClientRule,
    Policy,
    RateRule,
    RouteRule,
)

from .factories import make_action


def test_empty_policy() -> None:
    """No active action means an empty policy."""
    policy = Policy.from_actions("shop", 3, [])
    assert policy.is_empty
    assert policy.version == 3


@pytest.mark.parametrize(
    "state",
    [
        ActionState.PENDING,
        ActionState.APPROVED,
        ActionState.LIFTED,
        ActionState.EXPIRED,
        ActionState.REVERTED,
        ActionState.REJECTED,
        ActionState.FAILED,
    ],
)
def test_inactive_actions_are_ignored(state: ActionState) -> None:
    """Only APPLIED and LIFTING actions shape the policy."""
    policy = Policy.from_actions("shop", 1, [make_action(state=state)])
    assert policy.is_empty


def test_other_services_actions_are_ignored() -> None:
    """An active action of another service does not leak into this service's policy."""
    policy = Policy.from_actions("shop", 1, [make_action(service="cart")])
    assert policy.is_empty


def test_lifting_action_is_still_in_force() -> None:
    """A LIFTING action is active: it appears in the policy."""
    action = make_action(state=ActionState.LIFTING, stage=1)
    assert "POST /checkout" in Policy.from_actions("shop", 1, [action]).routes


def test_circuit_break_rule_and_stages() -> None:
    """A breaker starts open at stage 0 and stops being forced open from stage 1."""
    action = make_action(
        "B1", params={"open_for": 15.0, "probes": 2, "failure_ratio": 0.3, "min_calls": 4}
    )
    rule = Policy.from_actions("shop", 1, [action]).routes["POST /checkout"]
    assert rule.breaker == BreakerRule("B1", True, 15.0, 2, 0.3, 4)
    assert rule.incident_id == "INC-1"
    staged = make_action("B1", state=ActionState.LIFTING, stage=1)
    breaker = Policy.from_actions("shop", 1, [staged]).routes["POST /checkout"].breaker
    assert breaker is not None
    assert not breaker.start_open
    assert breaker.open_for_s == 30.0  # defaults when params are missing


def test_disable_route_defaults_and_params() -> None:
    """Disabling a route answers with its status and body (503 by default)."""
    default = make_action(kind=ActionKind.DISABLE_ROUTE)
    rule = Policy.from_actions("shop", 1, [default]).routes["POST /checkout"]
    assert rule.disabled_status == DEFAULT_DISABLED_STATUS
    custom = make_action(kind=ActionKind.DISABLE_ROUTE, params={"status": 410, "body": "gone"})
    rule = Policy.from_actions("shop", 1, [custom]).routes["POST /checkout"]
    assert (rule.disabled_status, rule.disabled_body) == (410, "gone")


@pytest.mark.parametrize(
    ("stage", "rate", "burst"), [(0, 5.0, 10), (1, 10.0, 20), (2, 20.0, 40), (3, 40.0, 80)]
)
def test_staged_throttle_ramps_rate_and_burst(stage: int, rate: float, burst: int) -> None:
    """Each lifting stage multiplies a throttle's rate and burst by its ramp (2 by default)."""
    action = make_action(
        "T1",
        kind=ActionKind.THROTTLE_ROUTE,
        state=ActionState.LIFTING if stage else ActionState.APPLIED,
        params={"rate": 5.0, "burst": 10},
        stage=stage,
    )
    rule = Policy.from_actions("shop", 1, [action]).routes["POST /checkout"]
    assert rule.throttle == RateRule("T1", rate, burst)


def test_throttle_ramp_param_and_minimum_burst() -> None:
    """A custom ramp is honoured and burst never drops below 1."""
    action = make_action(
        "T1",
        kind=ActionKind.THROTTLE_CLIENT,
        target="bot",
        params={"rate": 0.5, "ramp": 3.0, "route": "GET /x"},
        stage=2,
        state=ActionState.LIFTING,
    )
    rule = Policy.from_actions("shop", 1, [action]).clients["bot"]
    assert rule.throttle == RateRule("T1", 4.5, 9)
    assert rule.route == "GET /x"
    zero = make_action(
        "T2", kind=ActionKind.THROTTLE_ROUTE, params={"rate": 1.0, "burst": 1, "ramp": 0.5}, stage=1
    )
    throttle = Policy.from_actions("shop", 1, [zero]).routes["POST /checkout"].throttle
    assert throttle is not None
    assert throttle.burst == 1


@pytest.mark.parametrize(("stage", "fraction"), [(0, 0.8), (1, 0.4), (2, 0.2)])
def test_shed_halves_per_stage(stage: int, fraction: float) -> None:
    """Shedding halves its fraction at each lifting stage."""
    action = make_action(kind=ActionKind.SHED_LOAD, params={"fraction": 0.8}, stage=stage)
    rule = Policy.from_actions("shop", 1, [action]).routes["POST /checkout"]
    assert rule.shed_fraction == pytest.approx(fraction)


def test_block_and_throttle_of_one_client_merge() -> None:
    """Block and throttle actions on the same client combine into one client rule."""
    block = make_action("K1", kind=ActionKind.BLOCK_CLIENT, target="bot", created_at=1.0)
    throttle = make_action(
        "K2", kind=ActionKind.THROTTLE_CLIENT, target="bot", params={"rate": 2.0}, created_at=2.0
    )
    rule = Policy.from_actions("shop", 1, [throttle, block]).clients["bot"]
    assert rule.blocked_status == DEFAULT_BLOCK_STATUS
    assert rule.throttle == RateRule("K2", 2.0, 1)
    assert rule.route is None


def test_route_rules_merge_across_kinds() -> None:
    """A breaker and a shed on one route end up in one RouteRule."""
    breaker = make_action("B1", created_at=1.0)
    shed = make_action("S1", kind=ActionKind.SHED_LOAD, params={"fraction": 0.5}, created_at=2.0)
    rule = Policy.from_actions("shop", 1, [shed, breaker]).routes["POST /checkout"]
    assert rule.breaker is not None
    assert rule.shed_fraction == 0.5


def test_later_action_wins_on_the_same_field() -> None:
    """Actions apply in creation order, so the later of two throttles is in force."""
    early = make_action(
        "T1", kind=ActionKind.THROTTLE_ROUTE, params={"rate": 5.0, "burst": 5}, created_at=1.0
    )
    late = make_action(
        "T2", kind=ActionKind.THROTTLE_ROUTE, params={"rate": 1.0, "burst": 1}, created_at=2.0
    )
    for order in ([early, late], [late, early]):
        throttle = Policy.from_actions("shop", 1, order).routes["POST /checkout"].throttle
        assert throttle is not None
        assert throttle.action_id == "T2"


def test_rollback_config_does_not_touch_traffic() -> None:
    """A config rollback acts on the config store: the policy stays empty."""
    action = make_action(kind=ActionKind.ROLLBACK_CONFIG, target="payment.timeout_ms")
    assert Policy.from_actions("shop", 1, [action]).is_empty


# --------------------------------------------------------------------------- serialization

ids = st.text("abcdef0123456789-", min_size=1, max_size=8)
names = st.text(min_size=1, max_size=12)
finite = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
rates = st.builds(RateRule, action_id=ids, rate=finite, burst=st.integers(1, 1000))
breakers = st.builds(
    BreakerRule,
    action_id=ids,
    start_open=st.booleans(),
    open_for_s=finite,
    probes=st.integers(1, 20),
    failure_ratio=st.floats(0.01, 1.0),
    min_calls=st.integers(1, 100),
)
statuses = st.none() | st.integers(400, 599)
route_rules = st.builds(
    RouteRule,
    route=names,
    incident_id=ids,
    breaker=st.none() | breakers,
    disabled_status=statuses,
    disabled_body=st.text(max_size=20),
    throttle=st.none() | rates,
    shed_fraction=st.floats(0.0, 0.99),
)
client_rules = st.builds(
    ClientRule,
    client=names,
    incident_id=ids,
    blocked_status=statuses,
    throttle=st.none() | rates,
    route=st.none() | names,
)
policies = st.builds(
    Policy,
    service=names,
    version=st.integers(0, 10**9),
    routes=st.dictionaries(names, route_rules, max_size=4),
    clients=st.dictionaries(names, client_rules, max_size=4),
)


@settings(max_examples=50)
@given(policy=policies)
def test_to_dict_from_dict_round_trip(policy: Policy) -> None:
    """from_dict(to_dict(p)) == p for every policy."""
    assert Policy.from_dict(policy.to_dict()) == policy


@settings(max_examples=50)
@given(policy=policies)
def test_json_round_trip(policy: Policy) -> None:
    """A policy survives the JSON trip to an agent unchanged."""
    assert Policy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_from_dict_tolerates_missing_sections() -> None:
    """Only the service is required; routes, clients and version default to empty/0."""
    policy = Policy.from_dict({"service": "shop"})
    assert policy == Policy("shop")
