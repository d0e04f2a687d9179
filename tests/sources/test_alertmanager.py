"""Alertmanager payloads into external alerts: the reference table, delivery keys, and
arbitrary JSON never raising anything but PayloadError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.alerts import AlertKind, AlertStatus
from stanch.core.severity import Severity
from stanch.sources import PayloadError
from stanch.sources.alertmanager import parse

NOW = 1_800_000_000.0


def payload(*alerts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"version": "4", "groupKey": "g1", "status": "firing", "alerts": list(alerts), **extra}


def am_alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": labels,
        "annotations": {},
        "startsAt": "2027-01-15T07:59:00.5Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2027-01-15T08:00:00Z",
        "fingerprint": "f1",
    }


def test_labels_map_to_service_route_and_severity() -> None:
    """service, route and severity come from labels; summary from the alertname."""
    (d,) = parse(
        payload(am_alert(alertname="Slow", service="shop", route="GET /a", severity="warning")), NOW
    )
    alert = d.alert
    assert (alert.kind, alert.source) == (AlertKind.EXTERNAL, "alertmanager")
    assert (alert.service, alert.route, alert.severity) == ("shop", "GET /a", Severity.SEV3)
    assert alert.explanation == "Slow"
    assert alert.started_at == NOW - 59.5
    assert alert.labels["alertname"] == "Slow"


def test_job_and_method_path_labels_are_fallbacks() -> None:
    """Without service/route labels: job names the service, method + path the route."""
    (d,) = parse(payload(am_alert(job="api", method="post", path="/pay", severity="critical")), NOW)
    assert (d.alert.service, d.alert.route, d.alert.severity) == ("api", "POST /pay", Severity.SEV1)
    (bare,) = parse(payload(am_alert()), NOW)
    assert (bare.alert.service, bare.alert.route) == ("unknown", "*")


def test_severity_words() -> None:
    """critical, error/high, warning, info map to SEV1..SEV4; unknown words to SEV3."""
    words = {"critical": "SEV1", "error": "SEV2", "high": "SEV2", "info": "SEV4", "odd": "SEV3"}
    for word, sev in words.items():
        (d,) = parse(payload(am_alert(severity=word)), NOW)
        assert d.alert.severity.value == sev


def test_delivery_key_changes_with_status_and_times_only() -> None:
    """Re-sent snapshots share keys; the resolve of the same alert has another key, the same
    fingerprint."""
    (a,) = parse(payload(am_alert(service="s")), NOW)
    (b,) = parse(payload(am_alert(service="s")), NOW + 60)
    (c,) = parse(payload(am_alert("resolved", service="s")), NOW + 60)
    assert a.delivery_key == b.delivery_key != c.delivery_key
    assert a.alert.fingerprint == c.alert.fingerprint
    assert c.alert.status is AlertStatus.RESOLVED
    assert c.alert.ended_at == NOW


def test_unknown_fields_are_ignored_but_bad_versions_refused() -> None:
    """Extra envelope fields pass; version 3 and a missing alerts list are PayloadErrors."""
    assert parse(payload(am_alert(), orgId=1, values={"A": 1}), NOW)
    with pytest.raises(PayloadError, match="version: Input should be '4' or '1'"):
        parse(payload(am_alert(), version="3"), NOW)
    with pytest.raises(PayloadError, match="alerts: Field required"):
        parse({"version": "4", "status": "firing"}, NOW)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
ALERT_LIKE = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved", "x"]), "startsAt": st.text(max_size=40)},
    optional={
        "labels": st.dictionaries(st.text(max_size=10), st.text(max_size=10) | JSON, max_size=4),
        "endsAt": st.text(max_size=40) | JSON,
        "fingerprint": st.text(max_size=20),
        "annotations": JSON,
    },
)
PAYLOAD_LIKE = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["4", "1", "2"]),
        "status": st.sampled_from(["firing", "resolved"]),
        "alerts": st.lists(ALERT_LIKE, max_size=3),
    },
    optional={"groupKey": st.text(max_size=20) | JSON, "truncatedAlerts": JSON},
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(JSON, PAYLOAD_LIKE))
def test_arbitrary_json_only_ever_raises_payload_error(data: Any) -> None:
    """Whatever JSON arrives, parse returns deliveries or raises PayloadError."""
    try:
        deliveries = parse(data, NOW)
    except PayloadError:
        return
    for d in deliveries:
        assert len(d.delivery_key) == 64
        assert d.alert.started_at <= NOW
