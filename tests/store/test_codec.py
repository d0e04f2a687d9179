"""The codec: domain objects survive a trip through strict JSON exactly, fields and floats alike."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.config import ConfigVersion
from stanch.core.events import ChangeEvent
from stanch.core.incidents import Impact, Incident, IncidentState, TimelineEntry
from stanch.core.severity import Severity
from stanch.store import codec

from . import samples

finite = st.floats(allow_nan=False, allow_infinity=False)
anything = st.floats()
names = st.text(max_size=12)
keys = names.filter(lambda k: k != codec.FLOAT_TAG)
leaves = st.none() | st.booleans() | st.integers() | finite | names
payloads = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
data_dicts = st.dictionaries(keys, payloads, max_size=3)


def through_json(d: dict[str, Any]) -> dict[str, Any]:
    """What a database hands back: strict JSON text, parsed again."""
    loaded: dict[str, Any] = json.loads(json.dumps(d, allow_nan=False))
    return loaded


def exact(d: dict[str, Any]) -> str:
    """JSON text with floats written by repr: equal only if every float is bit-for-bit equal."""
    return json.dumps(d, allow_nan=False)


@st.composite
def alerts(draw: st.DrawFn, floats: st.SearchStrategy[float] = finite) -> Alert:
    return Alert(
        fingerprint=draw(names),
        kind=draw(st.sampled_from(AlertKind)),
        service=draw(names),
        route=draw(names),
        signal=draw(names),
        severity=draw(st.sampled_from(Severity)),
        status=draw(st.sampled_from(AlertStatus)),
        started_at=draw(finite),
        updated_at=draw(finite),
        observed=draw(floats),
        expected=draw(floats),
        score=draw(floats),
        explanation=draw(st.text()),
        source=draw(names),
        ended_at=draw(st.none() | finite),
        clients=tuple(draw(st.lists(names, max_size=3))),
        labels=draw(st.dictionaries(keys, names, max_size=3)),
    )


actions = st.builds(
    Action,
    id=names,
    incident_id=names,
    kind=st.sampled_from(ActionKind),
    mode=st.sampled_from(ActionMode),
    state=st.sampled_from(ActionState),
    service=names,
    target=names,
    rule=names,
    created_at=finite,
    ttl_s=finite,
    verify_within_s=finite,
    params=data_dicts,
    reason=st.text(),
    applied_at=st.none() | finite,
    ended_at=st.none() | finite,
    decided_by=names,
    stage=st.integers(min_value=0, max_value=2**40),
    stage_at=st.none() | finite,
    verified=st.none() | st.booleans(),
)

entries = st.builds(
    TimelineEntry, ts=finite, kind=names, text=st.text(), actor=names, data=data_dicts
)


@st.composite
def incidents(draw: st.DrawFn) -> Incident:
    alert_list = draw(st.lists(alerts(), max_size=3))
    incident = Incident(
        id=draw(names),
        service=draw(names),
        title=draw(st.text()),
        severity=draw(st.sampled_from(Severity)),
        opened_at=draw(finite),
        state=draw(st.sampled_from(IncidentState)),
        routes=draw(st.sets(names, max_size=3)),
        clients=draw(st.sets(names, max_size=3)),
        alerts={a.fingerprint: a for a in alert_list},
        timeline=draw(st.lists(entries, max_size=4)),
        impact=Impact(
            requests=draw(st.integers(min_value=0)),
            failed=draw(st.integers(min_value=0)),
            protected=draw(st.integers(min_value=0)),
            clients_seen=draw(st.sets(names, max_size=4)),
            clients_failed=draw(st.sets(names, max_size=4)),
        ),
        suspects=draw(st.lists(data_dicts, max_size=3)),
        healthy_since=draw(st.none() | finite),
        acknowledged_by=draw(names),
        resolution=draw(st.text()),
        comments=draw(st.lists(entries, max_size=2)),
    )
    # After construction, as the engine would: __post_init__ must not get the last word.
    incident.entered = draw(st.dictionaries(st.sampled_from(IncidentState), finite))
    incident.onset = draw(finite)
    return incident


@given(alerts())
def test_alert_round_trip(alert: Alert) -> None:
    """An alert comes back equal, labels included, with every float bit-for-bit."""
    d = codec.alert_to_dict(alert)
    back = codec.alert_from_dict(through_json(d))
    assert back == alert
    assert back.labels == alert.labels
    assert exact(codec.alert_to_dict(back)) == exact(d)


@given(alerts(floats=anything))
def test_alert_non_finite_floats_survive_strict_json(alert: Alert) -> None:
    """NaN and infinities (a z-score with no spread) are tagged, so strict JSON holds them."""
    back = codec.alert_from_dict(through_json(codec.alert_to_dict(alert)))
    for name in ("observed", "expected", "score"):
        before, after = getattr(alert, name), getattr(back, name)
        assert (math.isnan(before) and math.isnan(after)) or before == after


@given(actions)
def test_action_round_trip(action: Action) -> None:
    """An action comes back equal, params included (dataclass equality skips them)."""
    d = codec.action_to_dict(action)
    back = codec.action_from_dict(through_json(d))
    assert back == action
    assert back.params == action.params
    assert exact(codec.action_to_dict(back)) == exact(d)


@given(incidents())
def test_incident_round_trip(incident: Incident) -> None:
    """An incident comes back equal: alerts, timeline and comment data, impact, entered, onset."""
    d = codec.incident_to_dict(incident)
    back = codec.incident_from_dict(through_json(d))
    assert back == incident
    assert [e.data for e in back.timeline] == [e.data for e in incident.timeline]
    assert [e.data for e in back.comments] == [e.data for e in incident.comments]
    assert {k: a.labels for k, a in back.alerts.items()} == {
        k: a.labels for k, a in incident.alerts.items()
    }
    assert exact(codec.incident_to_dict(back)) == exact(d)


def test_incident_onset_at_zero_is_kept() -> None:
    """An onset of 0.0 (a replay starting at t=0) is not mistaken for "unset" on the way back."""
    incident = samples.incident(opened_at=5.0)
    incident.onset = 0.0
    assert codec.incident_from_dict(codec.incident_to_dict(incident)).onset == 0.0


def test_incident_without_timeline_leaves_it_out() -> None:
    """``timeline=False`` omits the timeline, and reading such a dict gives an empty one."""
    d = codec.incident_to_dict(samples.incident(), timeline=False)
    assert "timeline" not in d
    assert codec.incident_from_dict(d).timeline == []


def test_sets_are_sorted_lists_and_enums_plain_values() -> None:
    """Client sets become sorted lists and enums their plain string values."""
    d = codec.incident_to_dict(samples.incident())
    assert d["impact"]["clients_seen"] == ["acme", "globex"]
    assert type(d["state"]) is str
    assert d["state"] == "acknowledged"
    assert type(d["alerts"]["fp-checkout-errors"]["kind"]) is str


def test_config_version_round_trip() -> None:
    """A config version comes back equal, its changed pairs as tuples again."""
    version = samples.config_version()
    back = codec.config_version_from_dict(through_json(codec.config_version_to_dict(version)))
    assert back == version
    assert back.changed == {"pool_size": (16, 4)}


def test_change_round_trip() -> None:
    """A change event comes back equal, details included."""
    change = samples.change()
    back = codec.change_from_dict(through_json(codec.change_to_dict(change)))
    assert back == change
    assert back.details == change.details


def test_old_documents_load_with_defaults() -> None:
    """A dict lacking optional fields (written before they existed) loads with their defaults."""
    d = codec.alert_to_dict(samples.alert())
    for optional in ("source", "ended_at", "clients", "labels"):
        del d[optional]
    back = codec.alert_from_dict(d)
    assert (back.source, back.ended_at, back.clients, back.labels) == ("detector", None, (), {})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"routes": {"a", "b"}}, "params.routes: set is not JSON-safe"),
        ({1: "x"}, "params: key 1 is not a string"),
        ({"$float": "nan"}, "reserved"),
    ],
)
def test_payload_that_json_cannot_hold_is_refused_by_name(
    payload: dict[Any, Any], message: str
) -> None:
    """A payload JSON cannot hold fails in the codec, naming where, not later in a driver."""
    action = samples.action()
    bad = replace(action, params=payload)
    with pytest.raises(TypeError, match=message):
        codec.action_to_dict(bad)


def test_tuples_in_payloads_come_back_as_lists() -> None:
    """Tuples inside free-form payloads come back as lists: JSON has no tuples."""
    assert codec.from_json(codec.to_json({"a": (1, (2.5, "x"))})) == {"a": [1, [2.5, "x"]]}


@pytest.mark.parametrize(
    ("cls", "to_dict", "sample"),
    [
        pytest.param(Alert, codec.alert_to_dict, samples.alert(), id="alert"),
        pytest.param(Action, codec.action_to_dict, samples.action(), id="action"),
        pytest.param(Incident, codec.incident_to_dict, samples.incident(), id="incident"),
        pytest.param(Impact, codec.impact_to_dict, Impact(), id="impact"),
        pytest.param(
            TimelineEntry, codec.timeline_entry_to_dict, TimelineEntry(1.0, "k", "t"), id="entry"
        ),
        pytest.param(
            ConfigVersion, codec.config_version_to_dict, samples.config_version(), id="config"
        ),
        pytest.param(ChangeEvent, codec.change_to_dict, samples.change(), id="change"),
    ],
)
def test_every_domain_field_is_encoded(
    cls: type, to_dict: Callable[[Any], Any], sample: Any
) -> None:
    """A field added to a domain class fails here until the codec carries it (no silent loss)."""
    assert set(to_dict(sample)) == {f.name for f in fields(cls)}
