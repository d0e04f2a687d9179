"""The incident state machine, its timeline, and its stage clocks."""

from __future__ import annotations

import copy
import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from stanch.core.alerts import AlertKind
from stanch.core.errors import IllegalTransition
from stanch.core.incidents import (
    INCIDENT_TRANSITIONS,
    MAX_TRACKED_CLIENTS,
    OPEN_INCIDENT_STATES,
    Impact,
    Incident,
    IncidentState,
    alert_title,
)
from stanch.core.severity import Severity

from .factories import make_alert, make_incident

S = IncidentState
LATER_STAGES = (S.ACKNOWLEDGED, S.ISOLATED, S.MITIGATED, S.RESOLVED)


def snapshot(incident: Incident) -> tuple[object, ...]:
    return (
        incident.state,
        dict(incident.entered),
        list(incident.timeline),
        incident.acknowledged_by,
    )


class IncidentLifecycle(RuleBasedStateMachine):
    """Random legal and illegal moves against a model of where the incident must be."""

    @initialize(opened_at=st.floats(0, 1e6))
    def open(self, opened_at: float) -> None:
        self.incident = Incident(
            id="INC-1", service="shop", title="t", severity=Severity.SEV3, opened_at=opened_at
        )
        self.now = opened_at
        self.state = S.DETECTED
        self.expected_entered: dict[str, float] = {S.DETECTED.value: opened_at}
        self.state_changes = 0
        self.first_actor = ""

    def _tick(self, dt: float) -> float:
        self.now += dt
        return self.now

    def _entered_by_model(self, to: IncidentState, now: float) -> None:
        if to is S.DETECTED:
            for later in LATER_STAGES:
                self.expected_entered.pop(later.value, None)
        self.expected_entered.setdefault(to.value, now)

    @rule(to=st.sampled_from(IncidentState), dt=st.floats(0, 3600), why=st.text(max_size=5))
    def transition(self, to: IncidentState, dt: float, why: str) -> None:
        now = self._tick(dt)
        before = snapshot(self.incident)
        frm = self.state
        if to in INCIDENT_TRANSITIONS[frm]:
            self.incident.transition(to, now, "alice", why)
            self._entered_by_model(to, now)
            self.state = to
            self.state_changes += 1
            last = self.incident.timeline[-1]
            assert last.kind == "state"
            assert last.data == {"before": frm.value, "after": to.value}
            assert last.ts == now
            assert last.actor == "alice"
            assert (why in last.text) if why else last.text.endswith(str(to))
        else:
            with pytest.raises(IllegalTransition):
                self.incident.transition(to, now)
            assert snapshot(self.incident) == before

    @rule(to=st.sampled_from(IncidentState), dt=st.floats(0, 3600))
    def advance_to(self, to: IncidentState, dt: float) -> None:
        now = self._tick(dt)
        before = snapshot(self.incident)
        moved = self.incident.advance_to(to, now)
        legal = to is not self.state and to in INCIDENT_TRANSITIONS[self.state]
        assert moved is legal
        if moved:
            self._entered_by_model(to, now)
            self.state = to
            self.state_changes += 1
        else:
            assert snapshot(self.incident) == before

    @rule(actor=st.sampled_from(["alice", "bob"]), dt=st.floats(0, 3600))
    def acknowledge(self, actor: str, dt: float) -> None:
        now = self._tick(dt)
        before = snapshot(self.incident)
        if self.state not in OPEN_INCIDENT_STATES:
            with pytest.raises(IllegalTransition):
                self.incident.acknowledge(now, actor)
            assert snapshot(self.incident) == before
            return
        self.incident.acknowledge(now, actor)
        self.first_actor = self.first_actor or actor
        if self.state is S.DETECTED:
            self._entered_by_model(S.ACKNOWLEDGED, now)
            self.state = S.ACKNOWLEDGED
            self.state_changes += 1
            assert self.incident.timeline[-1].kind == "state"
        else:
            # Past DETECTED, acknowledging is a fact on the timeline, not a state change.
            self.expected_entered.setdefault(S.ACKNOWLEDGED.value, now)
            last = self.incident.timeline[-1]
            assert (last.kind, last.actor, last.ts) == ("acknowledged", actor, now)
        assert self.incident.acknowledged_by == self.first_actor

    @precondition(lambda self: self.state is S.CLOSED)
    @rule(to=st.sampled_from(IncidentState))
    def closed_is_terminal(self, to: IncidentState) -> None:
        assert not self.incident.can(to)
        with pytest.raises(IllegalTransition):
            self.incident.transition(to, self.now)
        with pytest.raises(IllegalTransition):
            self.incident.acknowledge(self.now, "alice")

    @invariant()
    def state_matches_model(self) -> None:
        assert self.incident.state is self.state
        assert self.incident.is_open == (self.state in OPEN_INCIDENT_STATES)

    @invariant()
    def every_state_change_is_on_the_timeline(self) -> None:
        changes = [e for e in self.incident.timeline if e.kind == "state"]
        assert len(changes) == self.state_changes
        if changes:
            assert changes[-1].data["after"] == self.state.value
        # Consecutive state entries chain: each starts where the previous ended.
        for prev, nxt in itertools.pairwise(changes):
            assert nxt.data["before"] == prev.data["after"]

    @invariant()
    def entered_matches_model_and_is_monotone_along_the_path(self) -> None:
        assert self.incident.entered == self.expected_entered
        # In the order the stages were (re)entered along the path, their times never decrease.
        times = list(self.incident.entered.values())
        assert times == sorted(times)
        assert self.incident.entered[S.DETECTED.value] == self.incident.opened_at
        assert self.state.value in self.incident.entered

    @invariant()
    def timeline_times_never_run_backwards(self) -> None:
        times = [e.ts for e in self.incident.timeline]
        assert times == sorted(times)


TestIncidentLifecycle = IncidentLifecycle.TestCase
TestIncidentLifecycle.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)


# --------------------------------------------------------------------------- examples


def test_transition_table_only_goes_forward_except_reopen() -> None:
    """The only backward edge in the table is RESOLVED -> DETECTED (reopen)."""
    order = list(IncidentState)
    backward = [
        (a, b)
        for a, tos in INCIDENT_TRANSITIONS.items()
        for b in tos
        if order.index(b) <= order.index(a)
    ]
    assert backward == [(S.RESOLVED, S.DETECTED)]
    assert INCIDENT_TRANSITIONS[S.CLOSED] == frozenset()


def test_reopen_clears_later_stage_times() -> None:
    """Reopening keeps the original detection time and restarts the clock of later stages."""
    incident = make_incident(opened_at=100.0)
    incident.acknowledge(110.0, "alice")
    incident.transition(S.ISOLATED, 120.0)
    incident.transition(S.RESOLVED, 200.0)
    incident.transition(S.DETECTED, 300.0, why="recurred")
    assert incident.entered == {"detected": 100.0}
    assert incident.time_to(S.RESOLVED) is None
    incident.transition(S.MITIGATED, 310.0)
    assert incident.entered == {"detected": 100.0, "mitigated": 310.0}
    assert "recurred" in incident.timeline[-2].text


def test_acknowledge_past_detected_records_time_without_state_change() -> None:
    """An ack after automatic isolation stays ISOLATED but records when it was acknowledged."""
    incident = make_incident(opened_at=100.0)
    incident.transition(S.ISOLATED, 105.0)
    incident.acknowledge(130.0, "bob")
    incident.acknowledge(140.0, "carol")
    assert incident.state is S.ISOLATED
    assert incident.entered["acknowledged"] == 130.0
    assert incident.acknowledged_by == "bob"
    assert [e.kind for e in incident.timeline] == ["state", "acknowledged", "acknowledged"]
    assert incident.time_to(S.ACKNOWLEDGED) == 30.0


def test_acknowledge_a_resolved_incident_is_illegal() -> None:
    """Nothing is left to acknowledge once an incident is resolved."""
    incident = make_incident()
    incident.transition(S.RESOLVED, 200.0)
    with pytest.raises(IllegalTransition, match="nothing to acknowledge"):
        incident.acknowledge(210.0, "alice")
    assert incident.acknowledged_by == ""


def test_time_to_measures_from_onset() -> None:
    """time_to counts from the onset (earliest alert start), never negative."""
    alert = make_alert(started_at=40.0)
    incident = make_incident(opened_at=100.0, alerts=(alert,))
    assert incident.onset == 40.0
    incident.transition(S.MITIGATED, 160.0)
    assert incident.time_to(S.MITIGATED) == 120.0
    assert incident.time_to(S.DETECTED) == 60.0
    assert incident.time_to(S.ISOLATED) is None


def test_add_alert_escalates_severity_and_notes_once() -> None:
    """A more urgent alert raises severity (noted); re-adding an alert does not re-note it."""
    incident = make_incident(severity=Severity.SEV3)
    alert = make_alert(severity=Severity.SEV1, clients=("acme",), route="GET /x")
    incident.add_alert(alert, 101.0)
    incident.add_alert(alert, 102.0)
    assert incident.severity is Severity.SEV1
    assert [e.kind for e in incident.timeline] == ["severity", "alert"]
    assert incident.routes == {"GET /x"}
    assert incident.clients == {"acme"}
    assert incident.firing_alerts == [alert]
    incident.add_alert(make_alert(AlertKind.TRAFFIC_DROP, severity=Severity.SEV4), 103.0)
    assert incident.severity is Severity.SEV1


def test_service_wide_alert_adds_no_route() -> None:
    """A service-wide alert does not add '*' to the incident's routes."""
    incident = make_incident(alerts=(make_alert(route="*"),))
    assert incident.routes == set()


def test_impact_tracks_clients_within_a_bound() -> None:
    """Impact counts requests and the share of clients that saw a failure, boundedly."""
    impact = Impact()
    assert impact.users_affected_share == 0.0
    impact.add(10, 2, 1)
    impact.add(5, 0, 0)
    impact.see_client("a", failed=True)
    impact.see_client("b", failed=False)
    assert (impact.requests, impact.failed, impact.protected) == (15, 2, 1)
    assert impact.users_affected_share == 0.5
    for i in range(MAX_TRACKED_CLIENTS + 10):
        impact.see_client(f"c{i}", failed=True)
    assert len(impact.clients_seen) == MAX_TRACKED_CLIENTS
    assert len(impact.clients_failed) == MAX_TRACKED_CLIENTS


def test_illegal_transition_names_both_states() -> None:
    """The error says which edge was refused."""
    incident = make_incident()
    before = copy.deepcopy(incident.entered)
    with pytest.raises(IllegalTransition, match="detected -> closed"):
        incident.transition(S.CLOSED, 150.0)
    assert incident.entered == before
    assert incident.timeline == []


def test_an_alert_that_fires_again_is_noted_as_returned() -> None:
    """Cleared then firing again is on the timeline ("back: ..."); updates of an alert still
    firing, and its clearing (the engine notes that), add nothing here."""
    alert = make_alert(route="GET /x")
    incident = make_incident(alerts=(alert,))
    incident.add_alert(alert, 105.0)  # an update: nothing new
    incident.add_alert(alert.resolve(110.0), 110.0)
    assert [e.kind for e in incident.timeline] == ["severity", "alert"]
    incident.add_alert(alert, 120.0)
    returned = incident.timeline[-1]
    assert (returned.ts, returned.kind) == (120.0, "alert_returned")
    assert returned.text == f"back: {alert.explanation}"
    assert returned.data["fingerprint"] == alert.fingerprint


def test_reopen_is_titled_after_what_reopened_it() -> None:
    """Reopened by another of its alerts: the title follows it, the old one on the timeline;
    reopened by the alert it is named after: the title stays and no title entry is made."""
    route = make_alert(route="GET /x")
    service = make_alert(route="*")
    incident = make_incident(alerts=(route, service), title=alert_title(route))
    assert incident.title == "Error burst on GET /x"
    for alert in (route, service):
        incident.add_alert(alert.resolve(190.0), 190.0)
    incident.transition(S.RESOLVED, 200.0)
    incident.reopen(service, 300.0)
    assert incident.state is S.DETECTED
    assert incident.title == "Error burst on service shop"
    assert [e.kind for e in incident.timeline[-3:]] == ["state", "title", "alert_returned"]
    assert incident.timeline[-2].data == {
        "before": "Error burst on GET /x",
        "after": "Error burst on service shop",
    }
    incident.add_alert(service.resolve(390.0), 390.0)
    incident.transition(S.RESOLVED, 400.0)
    incident.reopen(service, 500.0)
    assert incident.reopens == 2
    assert incident.title == "Error burst on service shop"
    assert [e.kind for e in incident.timeline].count("title") == 1
