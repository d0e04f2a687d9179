"""PagerDuty Events v2: validation, dedup decisions, normalization, change events."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.events import ChangeKind
from stanch.core.severity import Severity
from stanch.sources import PayloadError
from stanch.sources.pagerduty import (
    KeyState,
    change_event,
    decide,
    parse_change,
    parse_event,
    state_key,
)

NOW = 1_800_000_000.0


def trigger(**extra: Any) -> dict[str, Any]:
    event = {
        "routing_key": "rk",
        "event_action": "trigger",
        "payload": {
            "summary": "disk full",
            "source": "db-1",
            "severity": "warning",
            "timestamp": "2027-01-15T07:59:00.000+0000",
            "class": "disk",
            "custom_details": {"service": "db", "route": "GET /rows"},
        },
    }
    return {**event, **extra}


def test_a_trigger_normalizes_per_the_table() -> None:
    """Service from custom_details, route, severity, summary, start, labels."""
    outcome = decide(parse_event(trigger()), None, NOW, new_key="gen")
    alert = outcome.alert
    assert outcome.verb == "fire"
    assert outcome.dedup_key == "gen"
    assert alert is not None
    assert (alert.service, alert.route, alert.severity) == ("db", "GET /rows", Severity.SEV3)
    assert (alert.explanation, alert.started_at, alert.signal) == ("disk full", NOW - 60, "disk")
    assert alert.labels["source"] == "db-1"
    assert outcome.state == KeyState(1, True, alert.fingerprint)


def test_dedup_rules() -> None:
    """Open key: update; resolved key: a new generation; follow-ups of unknown keys: drop."""
    event = parse_event(trigger(dedup_key="k"))
    fired = decide(event, None, NOW, new_key="x")
    open_state = fired.state
    assert open_state is not None
    update = decide(event, open_state, NOW, new_key="x")
    assert (update.verb, update.fingerprint, update.state) == ("update", fired.fingerprint, None)
    resolve = decide(
        parse_event({"routing_key": "rk", "event_action": "resolve", "dedup_key": "k"}),
        open_state,
        NOW,
        new_key="x",
    )
    assert resolve.verb == "resolve"
    assert resolve.state == KeyState(1, False, fired.fingerprint)
    refired = decide(event, resolve.state, NOW, new_key="x")
    assert refired.verb == "fire"
    assert refired.fingerprint != fired.fingerprint
    ack = parse_event({"routing_key": "rk", "event_action": "acknowledge", "dedup_key": "k"})
    assert decide(ack, None, NOW, new_key="x").verb == "drop"
    assert decide(ack, resolve.state, NOW, new_key="x").verb == "drop"
    assert decide(ack, open_state, NOW, new_key="x").verb == "acknowledge"


def test_state_keys_separate_routing_keys() -> None:
    """The same dedup key under two routing keys is two keys."""
    assert state_key("a", "k") != state_key("b", "k")
    assert len(state_key("a", "k" * 255)) == 64


def test_change_events_become_change_events() -> None:
    """kind, version, routes and service come from custom_details; the id is stable."""
    body = {
        "routing_key": "rk",
        "payload": {
            "summary": "flag on",
            "source": "launchdarkly",
            "custom_details": {"kind": "feature_flag", "service": "api", "routes": ["GET /a", 3]},
        },
    }
    change = change_event(parse_change(body), NOW)
    assert (change.kind, change.service, change.routes) == (
        ChangeKind.FEATURE_FLAG,
        "api",
        ("GET /a",),
    )
    assert change.id == change_event(parse_change(body), NOW + 5).id


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
)
EVENT_LIKE = st.fixed_dictionaries(
    {
        "routing_key": st.text(max_size=5) | JSON,
        "event_action": st.sampled_from(["trigger", "acknowledge", "resolve", "x"]),
    },
    optional={
        "dedup_key": st.text(max_size=5) | JSON,
        "payload": st.fixed_dictionaries(
            {
                "summary": st.text(max_size=5),
                "source": st.text(max_size=5),
                "severity": st.sampled_from(["critical", "error", "warning", "info", "bad"]),
            },
            optional={
                "timestamp": st.text(max_size=30),
                "custom_details": JSON,
                "component": st.text(max_size=10),
            },
        )
        | JSON,
    },
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(JSON, EVENT_LIKE), st.booleans())
def test_arbitrary_json_only_ever_raises_payload_error(data: Any, known: bool) -> None:
    """parse_event + decide, and parse_change + change_event, raise PayloadError or nothing."""
    state = KeyState(1, True, "f") if known else None
    with contextlib.suppress(PayloadError):
        decide(parse_event(data), state, NOW, new_key="g")
    with contextlib.suppress(PayloadError):
        change_event(parse_change(data), NOW)
