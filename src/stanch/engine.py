"""The engine: one ``step(now)`` advances the whole loop, whatever the clock.

It drains request outcomes from the enforcement points, closes time windows, runs detection,
groups alerts into incidents, asks the runbook what to do, applies what is approved, ranks
suspects, verifies that mitigations help, lifts them in stages once recovery holds, and writes
the post-mortem. Decisions live in the pure core; the engine only wires them to the store, the
policy holders and the configuration stores, and it never reads the wall clock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from stanch.buffer import EventBuffer, PolicyHolder
from stanch.core.actions import Action, ActionKind, ActionState
from stanch.core.alerts import Alert
from stanch.core.config import ConfigStore
from stanch.core.correlation import CorrelationConfig, place
from stanch.core.detection import DetectionConfig, SeriesMonitor, route_config
from stanch.core.errors import NotFound, StanchError
from stanch.core.events import ChangeEvent, RequestEvent
from stanch.core.incidents import Incident, IncidentState
from stanch.core.noise import MaintenanceWindow, Matcher, NoiseControl, Silence, Suppression
from stanch.core.planning import plan_actions
from stanch.core.policy import Policy
from stanch.core.postmortem import PostMortem, draft_postmortem, render_markdown
from stanch.core.rca import rank_suspects
from stanch.core.rca.suspects import REMEDIATION_ACTOR
from stanch.core.recovery import RecoveryConfig, StepKind, plan_recovery
from stanch.core.runbook import Runbook
from stanch.core.series import SERVICE_WIDE, CardinalityGuard, SeriesKey
from stanch.core.totals import SeriesTotals
from stanch.core.windows import Point, WindowAggregator
from stanch.store import Store

log = logging.getLogger("stanch.engine")

Listener = Callable[[str, dict[str, Any]], None]
"""Called with (event name, details) on incident_opened, incident_reopened, severity_changed,
approval_needed, action_applied, action_lifted, action_changed, incident_resolved,
config_changed and timeline (every stored timeline entry): the seam for notifications, the
audit trail and the demo."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    interval_s: float = 1.0
    max_series: int = 500
    checkpoint_every_s: float = 10.0  # how often learned detector state is saved
    decision_poll_s: float = 1.0  # how often decisions queued by other processes are read
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    # Per-route overrides (exact route key or glob; "*" = the service-wide series), as
    # proposed by `stanch tune`.
    detection_routes: Mapping[str, DetectionConfig] = field(default_factory=dict, hash=False)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)


BROAD_SHARE = 0.75  # share of a service's traffic that makes a service-wide alert "broad"

_KIND_TITLES = {
    "traffic_spike": "Traffic spike",
    "traffic_drop": "Traffic drop",
    "error_burst": "Error burst",
    "latency_spike": "Latency spike",
    "slo_burn": "SLO budget burn",
}


class Engine:
    """Runs the incident loop for any number of services against one store."""

    def __init__(
        self,
        store: Store,
        runbook: Runbook,
        *,
        config: EngineConfig | None = None,
        now: float = 0.0,
        record: Callable[[list[Point]], None] | None = None,
    ) -> None:
        self.store = store
        self.runbook = runbook
        self.config = config or EngineConfig()
        self.guard = CardinalityGuard(self.config.max_series)
        self.totals = SeriesTotals()  # cumulative per-series counts for /metrics
        self.record = record  # history recorder for backtests (evaluation.history.PointRecorder)
        self.windows = WindowAggregator(self.config.interval_s, self.guard)
        self.monitors: dict[SeriesKey, SeriesMonitor] = {}
        self.buffers: dict[str, EventBuffer] = {}
        self.holders: dict[str, PolicyHolder] = {}
        self.config_stores: dict[str, ConfigStore] = {}
        self.incidents: dict[str, Incident] = {}
        self.actions: dict[str, Action] = {}
        self.changes: dict[str, ChangeEvent] = {}
        self.policies: dict[str, Policy] = {}
        self.listeners: list[Listener] = []
        # Called after each step's detection with (now, closed points): the dashboard's charts.
        self.on_points: list[Callable[[float, list[Point]], None]] = []
        self.last_step = now
        self.points_seen = 0
        self._dirty_incidents: set[str] = set()
        self._dirty_policy: set[str] = set()
        self._last_checkpoint = now
        self._last_poll = now
        self._announced: dict[str, int] = {}
        self.noise = NoiseControl.from_dict(store.get_meta("noise") or {})
        self.held: dict[str, Alert] = {}  # firing alerts that noise control holds back
        self.suppressed: deque[Suppression] = deque(maxlen=10_000)
        self._restore(now)

    # ------------------------------------------------------------------ wiring

    def attach(self, service: str, *, version: str = "") -> tuple[EventBuffer, PolicyHolder]:
        """The buffer and policy holder an enforcement point of ``service`` uses."""
        buffer = self.buffers.get(service)
        if buffer is None:
            buffer = self.buffers[service] = EventBuffer(service, version=version)
        return buffer, self._holder(service)

    def add_config_store(self, config: ConfigStore) -> ConfigStore:
        """Manage ``config``'s versions: persisted history wins over the given defaults."""
        history = self.store.config_history(config.service)
        if history:
            config = ConfigStore(config.service, list(config.specs.values()), history=history)
        else:
            for version in config.history:
                self.store.add_config_version(config.service, version)
        self.config_stores[config.service] = config
        return config

    def change_config(
        self, service: str, now: float, changes: dict[str, Any], *, author: str, reason: str = ""
    ) -> ChangeEvent:
        """Apply a configuration change (validated, versioned, recorded as a change event)."""
        store = self.config_stores.get(service)
        if store is None:
            raise NotFound(f"no configuration store for service {service!r}")
        version, change = store.set(now, changes, author=author, reason=reason)
        self.store.add_config_version(service, version)
        self.record_change(change)
        self._emit(
            "config_changed",
            service=service,
            version=version.version,
            actor=author,
            changed={k: list(v) for k, v in version.changed.items()},
            reason=reason,
            ts=now,
        )
        return change

    def rollback_config(
        self, service: str, now: float, to_version: int, *, author: str, reason: str = ""
    ) -> ChangeEvent:
        """Make an earlier configuration version current again (as a new version)."""
        store = self.config_stores.get(service)
        if store is None:
            raise NotFound(f"no configuration store for service {service!r}")
        version, change = store.rollback(now, to_version, author=author, reason=reason)
        self.store.add_config_version(service, version)
        self.record_change(change)
        self._emit(
            "config_changed",
            service=service,
            version=version.version,
            actor=author,
            changed={k: list(v) for k, v in version.changed.items()},
            reason=reason,
            ts=now,
        )
        return change

    def record_change(self, change: ChangeEvent) -> None:
        """A deploy or config change: kept for root-cause ranking of later incidents."""
        self.changes[change.id] = change
        self.store.add_change(change)
        for incident in self.incidents.values():
            if incident.is_open and incident.service == change.service:
                self._rank(incident, change.ts)

    def ingest_alert(self, alert: Alert, now: float) -> str | None:
        """An alert from outside (Alertmanager, PagerDuty, a user report): correlated, planned
        and recovered like the detectors' own. Idempotent: the same firing alert again only
        updates it. Returns the incident it belongs to, if any."""
        if alert.is_firing:
            if alert.fingerprint not in self._known_fingerprints():
                suppression = self.noise.check(alert, now)
                if suppression is not None:
                    self.held[alert.fingerprint] = alert
                    self.suppressed.append(suppression)
                    self._emit(
                        "alert_suppressed",
                        fingerprint=alert.fingerprint,
                        kind=alert.kind.value,
                        service=alert.service,
                        route=alert.route,
                        reason=suppression.reason,
                        explanation=alert.explanation,
                        ts=now,
                    )
                    return None
            for incident in self.incidents.values():
                known = incident.alerts.get(alert.fingerprint)
                if incident.is_open and known is not None and known.is_firing:
                    # add_alert, so a more urgent update (more people reporting) raises the
                    # incident's severity too; a known fingerprint adds no timeline entry.
                    before = incident.severity
                    incident.add_alert(replace(alert, started_at=known.started_at), now)
                    if incident.severity != before:
                        self._emit(
                            "severity_changed",
                            incident=incident.id,
                            severity=incident.severity.value,
                        )
                    self._dirty_incidents.add(incident.id)
                    self._persist()
                    return incident.id
            self._alert_fired(alert, now)
        elif self.held.pop(alert.fingerprint, None) is None:
            self._alert_resolved(alert, now)
        self._apply_approved(now)
        self._publish(now)
        self._persist()
        owner = [i.id for i in self.incidents.values() if alert.fingerprint in i.alerts]
        return owner[-1] if owner else None

    def _known_fingerprints(self) -> set[str]:
        return {fp for i in self.incidents.values() if i.is_open for fp in i.alerts}

    def ingest(self, events: Iterable[RequestEvent]) -> None:
        """Request outcomes from a source other than an in-process buffer (agents, logs)."""
        self.windows.add_many(events)

    # ------------------------------------------------------------------ the loop

    def step(self, now: float) -> list[Point]:
        """Advance everything to ``now``; returns the points closed in this step."""
        for buffer in self.buffers.values():
            self.windows.add_many(buffer.drain())
        points = self.windows.close(now)
        self.totals.add(points)
        if points and self.record is not None:
            try:
                self.record(points)
            except Exception:  # a full disk must not stop the loop
                log.exception("recording history failed")
        if self.noise.expire(now):
            self.store.set_meta("noise", self.noise.to_dict())
        self._detect(points, now)
        self._account(points)
        if now - self._last_poll >= self.config.decision_poll_s:
            self._take_decisions(now)
            self._last_poll = now
        self._apply_approved(now)
        self._verify(now)
        self._recover(now)
        self._expire(now)
        self._publish(now)
        self._persist()
        if now - self._last_checkpoint >= self.config.checkpoint_every_s:
            self.checkpoint(now)
        self.last_step = now
        for listener in self.on_points:
            try:
                listener(now, points)
            except Exception:  # a broken chart must not stop the loop
                log.exception("point listener failed")
        return points

    def checkpoint(self, now: float) -> None:
        """Save what the detectors learned, so a restart resumes with warm baselines."""
        state = [
            [key.service, key.route, monitor.snapshot()]
            for key, monitor in sorted(self.monitors.items())
        ]
        self.store.set_meta("detectors", {"ts": now, "series": state})
        self._last_checkpoint = now

    def _detect(self, points: list[Point], now: float) -> None:
        self.points_seen += len(points)
        service_points = {p.key.service: p for p in points if p.key.route == SERVICE_WIDE}
        fired: list[Alert] = []
        for point in points:
            monitor = self.monitors.get(point.key)
            if monitor is None:
                monitor = self.monitors[point.key] = self._monitor(point.key)
            service_point = service_points.get(point.key.service)
            if service_point is not None and service_point.t != point.t:
                service_point = None
            for alert in monitor.observe(point, service_point):
                if alert.is_firing:
                    fired.append(alert)
                elif self.held.pop(alert.fingerprint, None) is not None:
                    self._emit("alert_suppressed_cleared", fingerprint=alert.fingerprint)
                else:
                    self._alert_resolved(alert, now)
        # Route alerts first: a service-wide alert then joins the route's incident it explains.
        fired.sort(key=lambda a: (a.route == SERVICE_WIDE, a.started_at, a.fingerprint))
        service_firing = self._broad_service_alerts()
        for alert in fired:
            self._route_alert(alert, now, service_firing)
        self._release_held(now, service_firing)
        for incident in self.incidents.values():
            if not incident.is_open:
                continue
            changed = False
            for fp, alert in list(incident.alerts.items()):
                live = self._live_alert(alert)
                if live is not None and live is not alert and live.updated_at != alert.updated_at:
                    incident.alerts[fp] = live
                    changed = True
            if changed:
                self._dirty_incidents.add(incident.id)

    def _broad_service_alerts(self) -> list[Alert]:
        """Service-wide alerts that are broad: routes firing the same kind carry most of the
        service's traffic. Only those may inhibit route alerts (see ``core.noise``)."""
        broad = []
        for key, monitor in self.monitors.items():
            if key.route != SERVICE_WIDE:
                continue
            for kind, alert in monitor.firing.items():
                covered = sum(
                    m.share
                    for k, m in self.monitors.items()
                    if k.service == key.service and k.route != SERVICE_WIDE and kind in m.firing
                )
                if covered >= BROAD_SHARE:
                    broad.append(alert)
        return broad

    def _route_alert(self, alert: Alert, now: float, service_firing: list[Alert]) -> None:
        """Page for ``alert``, or hold it back with the reason when noise control says so."""
        suppression = self.noise.check(alert, now, service_firing)
        if suppression is None:
            self._alert_fired(alert, now)
            return
        first = alert.fingerprint not in self.held
        self.held[alert.fingerprint] = alert
        if first:
            self.suppressed.append(suppression)
            self._emit(
                "alert_suppressed",
                fingerprint=alert.fingerprint,
                kind=alert.kind.value,
                service=alert.service,
                route=alert.route,
                reason=suppression.reason,
                explanation=alert.explanation,
                ts=now,
            )

    def _release_held(self, now: float, service_firing: list[Alert]) -> None:
        """Held alerts whose reason is gone (silence over, inhibitor cleared) page now."""
        for fingerprint, alert in list(self.held.items()):
            live = self._live_alert(alert) if alert.source == "detector" else alert
            if live is None:
                del self.held[fingerprint]
                continue
            if self.noise.check(live, now, service_firing) is None:
                del self.held[fingerprint]
                self._alert_fired(live, now)

    def add_silence(
        self,
        matchers: list[tuple[str, str]],
        *,
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str = "",
    ) -> Silence:
        """Mute matching alerts for a while; they are still recorded, with the reason."""
        silence = Silence(
            f"S-{self.store.next_id('silence'):04d}",
            tuple(Matcher(field, pattern) for field, pattern in matchers),
            starts_at,
            ends_at,
            created_by,
            comment,
        )
        self.noise.silences[silence.id] = silence
        self.store.set_meta("noise", self.noise.to_dict())
        return silence

    def add_maintenance(self, window: MaintenanceWindow) -> MaintenanceWindow:
        """Planned work: alerts it covers are held back while it lasts."""
        self.noise.windows[window.id] = window
        self.store.set_meta("noise", self.noise.to_dict())
        return window

    def remove_noise_rule(self, rule_id: str) -> None:
        if self.noise.silences.pop(rule_id, None) is None and (
            self.noise.windows.pop(rule_id, None) is None
        ):
            raise NotFound(f"no silence or maintenance window {rule_id}")
        self.store.set_meta("noise", self.noise.to_dict())

    def _monitor(self, key: SeriesKey) -> SeriesMonitor:
        config = route_config(key.route, self.config.detection, self.config.detection_routes)
        return SeriesMonitor(key, config)

    def _live_alert(self, alert: Alert) -> Alert | None:
        monitor = self.monitors.get(SeriesKey(alert.service, alert.route))
        return monitor.firing.get(alert.kind) if monitor else None

    def _alert_fired(self, alert: Alert, now: float) -> None:
        placement = place(alert, self.incidents.values(), now, self.config.correlation)
        incident = placement.incident
        if incident is None:
            incident = self._open_incident(alert, now)
        elif placement.reopen:
            incident.transition(IncidentState.DETECTED, now, why=f"recurred: {alert.explanation}")
            incident.add_alert(alert, now)
            self._emit("incident_reopened", incident=incident.id)
        else:
            before = incident.severity
            incident.add_alert(alert, now)
            if incident.severity != before:
                self._emit(
                    "severity_changed", incident=incident.id, severity=incident.severity.value
                )
        incident.healthy_since = None
        self._rank(incident, now)
        self._plan(alert, incident, now)
        self._dirty_incidents.add(incident.id)

    def _open_incident(self, alert: Alert, now: float) -> Incident:
        number = self.store.next_id("incident")
        where = alert.route if alert.route != SERVICE_WIDE else f"service {alert.service}"
        incident = Incident(
            id=f"INC-{number:04d}",
            service=alert.service,
            title=f"{_KIND_TITLES.get(alert.kind.value, alert.kind.value)} on {where}",
            severity=alert.severity,
            opened_at=now,
            onset=alert.started_at,
        )
        incident.note(now, "opened", f"incident opened at {alert.severity}")
        incident.add_alert(alert, now)
        self.incidents[incident.id] = incident
        self._emit(
            "incident_opened",
            incident=incident.id,
            title=incident.title,
            severity=incident.severity.value,
        )
        return incident

    def _alert_resolved(self, alert: Alert, now: float) -> None:
        for incident in self.incidents.values():
            if alert.fingerprint in incident.alerts and incident.is_open:
                incident.alerts[alert.fingerprint] = alert
                incident.note(now, "alert_cleared", f"{alert.kind} on {alert.route} back to normal")
                if not incident.firing_alerts:
                    incident.healthy_since = now
                    incident.note(now, "healthy", "all signals back to normal; verifying recovery")
                self._dirty_incidents.add(incident.id)

    def _rank(self, incident: Incident, now: float) -> None:
        changes = [c for c in self.changes.values() if c.service == incident.service]
        suspects = rank_suspects(
            changes,
            list(incident.alerts.values()),
            onset=incident.onset,
            service=incident.service,
            routes=set(incident.routes),
        )
        as_dicts = [
            {
                "kind": s.kind,
                "ref": s.ref,
                "score": s.score,
                "confidence": s.confidence,
                "summary": s.summary,
                "evidence": list(s.evidence),
            }
            for s in suspects[:10]
        ]
        top_before = incident.suspects[0]["ref"] if incident.suspects else None
        incident.suspects = as_dicts
        if suspects and suspects[0].ref != top_before:
            top = suspects[0]
            incident.note(
                now,
                "suspect",
                f"top suspect: {top.summary} "
                f"(confidence {top.confidence:.0%}; {'; '.join(top.evidence)})",
            )
        self._dirty_incidents.add(incident.id)

    def _plan(self, alert: Alert, incident: Incident, now: float) -> None:
        planned, skipped = plan_actions(
            alert,
            incident,
            self.runbook,
            self.actions.values(),
            self.changes,
            now=now,
            new_id=lambda: f"ACT-{self.store.next_id('action'):04d}",
        )
        for skip in skipped:
            incident.note(
                now, "action_skipped", f"rule {skip.rule}: {skip.kind} not taken: {skip.reason}"
            )
        for action in planned:
            self.actions[action.id] = action
            self.store.save_action(action)
            if action.state is ActionState.PENDING:
                incident.note(
                    now,
                    "approval_needed",
                    f"{action.kind} on {action.target} (rule {action.rule}) waits for approval",
                    action_id=action.id,
                )
                self._emit(
                    "approval_needed",
                    incident=incident.id,
                    action=action.id,
                    kind=action.kind.value,
                    target=action.target,
                )
            else:
                incident.note(
                    now,
                    "action_approved",
                    f"{action.kind} on {action.target} approved automatically (rule {action.rule})",
                    action_id=action.id,
                )

    # ------------------------------------------------------------------ humans

    def decide(
        self, action_id: str, approve: bool, *, actor: str, now: float, reason: str = ""
    ) -> Action:
        """A human approves or rejects a pending action; it takes effect at once."""
        action = self._action(action_id)
        target = ActionState.APPROVED if approve else ActionState.REJECTED
        action = self._set_action(action.to(target, now, decided_by=actor), now)
        verb = "approved" if approve else "rejected"
        self._incident(action.incident_id).note(
            now,
            f"action_{verb}",
            f"{action.kind} on {action.target} {verb} by {actor}"
            + (f": {reason}" if reason else ""),
            actor,
            action_id=action.id,
        )
        if approve:
            self._apply_approved(now)
            self._publish(now)
        self._persist()
        return self.actions[action_id]

    def revert(self, action_id: str, *, actor: str, now: float, reason: str = "") -> Action:
        """A human lifts an active action immediately."""
        action = self._action(action_id)
        action = self._set_action(action.to(ActionState.REVERTED, now, decided_by=actor), now)
        self._incident(action.incident_id).note(
            now,
            "action_reverted",
            f"{action.kind} on {action.target} reverted by {actor}"
            + (f": {reason}" if reason else ""),
            actor,
            action_id=action.id,
        )
        self._publish(now)
        self._persist()
        return action

    def acknowledge(self, incident_id: str, *, actor: str, now: float) -> Incident:
        incident = self._incident(incident_id)
        incident.acknowledge(now, actor)
        self._dirty_incidents.add(incident_id)
        self._persist()
        return incident

    def comment(self, incident_id: str, text: str, *, actor: str, now: float) -> Incident:
        incident = self._incident(incident_id)
        incident.note(now, "comment", text, actor)
        self._dirty_incidents.add(incident_id)
        self._persist()
        return incident

    def resolve(
        self, incident_id: str, *, actor: str, now: float, resolution: str = ""
    ) -> Incident:
        """A human declares the incident over; active actions are lifted with it."""
        incident = self._incident(incident_id)
        for action in self._actions_of(incident_id):
            if action.is_active:
                self._set_action(action.to(ActionState.REVERTED, now, decided_by=actor), now)
            elif action.state is ActionState.PENDING:
                self._set_action(action.to(ActionState.EXPIRED, now), now)
        incident.resolution = resolution
        self._resolve(incident, now, actor, resolution or "resolved by hand")
        self._publish(now)
        self._persist()
        return incident

    def _take_decisions(self, now: float) -> None:
        """Approvals queued by another process (the CLI, the API) while this engine runs."""
        for decision in self.store.take_decisions():
            try:
                if decision.decision == "revert":
                    self.revert(
                        decision.action_id, actor=decision.actor, now=now, reason=decision.reason
                    )
                else:
                    self.decide(
                        decision.action_id,
                        decision.decision == "approve",
                        actor=decision.actor,
                        now=now,
                        reason=decision.reason,
                    )
            except StanchError as exc:
                log.warning("decision on %s ignored: %s", decision.action_id, exc)

    # ------------------------------------------------------------------ actions

    def _apply_approved(self, now: float) -> None:
        for action in list(self.actions.values()):
            if action.state is ActionState.APPROVED:
                self._apply(action, now)

    def _apply(self, action: Action, now: float) -> None:
        incident = self._incident(action.incident_id)
        if action.kind is ActionKind.ROLLBACK_CONFIG:
            store = self.config_stores.get(action.service)
            try:
                if store is None:
                    raise NotFound(f"no configuration store for service {action.service!r}")
                version, change = store.revert(
                    now,
                    int(action.params["version"]),
                    author=REMEDIATION_ACTOR,
                    reason=f"{incident.id}: {action.rule}",
                )
            except (StanchError, KeyError, ValueError) as exc:
                self._set_action(action.to(ActionState.FAILED, now), now)
                incident.note(now, "action_failed", f"rollback of {action.target} failed: {exc}")
                return
            self.store.add_config_version(action.service, version)
            self.changes[change.id] = change
            self.store.add_change(change)
            text = f"config rolled back: {change.summary}"
        else:
            self._dirty_policy.add(action.service)
            text = f"{action.kind} on {action.target} applied"
        action = self._set_action(action.to(ActionState.APPLIED, now), now)
        incident.note(now, "action_applied", text, action_id=action.id)
        phase = (
            IncidentState.ISOLATED if action.kind.phase == "isolate" else IncidentState.MITIGATED
        )
        incident.advance_to(phase, now, why=text)
        self._emit(
            "action_applied",
            incident=incident.id,
            action=action.id,
            kind=action.kind.value,
            target=action.target,
        )

    def _verify(self, now: float) -> None:
        """Did each applied action help within its window? The answer goes on the timeline."""
        for action in list(self.actions.values()):
            if not action.is_active or action.verified is not None or action.applied_at is None:
                continue
            incident = self._incident(action.incident_id)
            if not incident.firing_alerts:
                elapsed = now - action.applied_at
                self._set_action(replace(action, verified=True), now)
                incident.note(
                    now,
                    "verified",
                    f"{action.kind} on {action.target} helped: signals "
                    f"normal {elapsed:.0f}s after it was applied",
                    action_id=action.id,
                )
            elif now - action.applied_at >= action.verify_within_s:
                self._set_action(replace(action, verified=False), now)
                still = "; ".join(a.explanation for a in incident.firing_alerts)
                incident.note(
                    now,
                    "not_helping",
                    f"{action.kind} on {action.target} did not help "
                    f"within {action.verify_within_s:.0f}s: {still}",
                    action_id=action.id,
                )

    def _recover(self, now: float) -> None:
        for incident in list(self.incidents.values()):
            if not incident.is_open:
                continue
            actions = self._actions_of(incident.id)
            steps = plan_recovery(
                actions,
                healthy_since=incident.healthy_since,
                now=now,
                config=self.config.recovery,
                flaps=incident.reopens,
            )
            for step in steps:
                if step.kind is StepKind.RESOLVE:
                    self._resolve(incident, now, "stanch", step.text)
                    continue
                action = self.actions[step.action_id]
                if step.kind is StepKind.EXPIRE:
                    self._set_action(action.to(ActionState.EXPIRED, now), now)
                elif step.kind is StepKind.LIFT:
                    self._set_action(action.to(ActionState.LIFTED, now), now)
                    self._emit("action_lifted", incident=incident.id, action=action.id)
                elif step.kind is StepKind.STAGE:
                    moved = (
                        action
                        if action.state is ActionState.LIFTING
                        else action.to(ActionState.LIFTING, now)
                    )
                    self._set_action(replace(moved, stage=step.stage, stage_at=now), now)
                else:  # relapse
                    self._set_action(
                        replace(action.to(ActionState.APPLIED, now), stage=0, stage_at=now), now
                    )
                incident.note(now, f"recovery_{step.kind}", step.text, action_id=action.id)
                self._dirty_policy.add(action.service)

    def _resolve(self, incident: Incident, now: float, actor: str, why: str) -> None:
        incident.transition(IncidentState.RESOLVED, now, actor, why)
        self._dirty_incidents.add(incident.id)
        pm = self.postmortem(incident.id)
        self.store.save_postmortem(incident.id, render_markdown(pm), pm.to_dict(), now)
        self._emit("incident_resolved", incident=incident.id)

    def _expire(self, now: float) -> None:
        for action in list(self.actions.values()):
            if (
                action.is_open
                and action.state is not ActionState.APPROVED
                and now >= action.expires_at()
            ):
                self._set_action(action.to(ActionState.EXPIRED, now), now)
                self._incident(action.incident_id).note(
                    now,
                    "action_expired",
                    f"{action.kind} on {action.target} expired after "
                    f"its TTL of {action.ttl_s:.0f}s",
                    action_id=action.id,
                )

    def _set_action(self, action: Action, now: float) -> Action:
        previous = self.actions.get(action.id)
        self.actions[action.id] = action
        self.store.save_action(action)
        if previous is None or previous.state != action.state:
            self._emit(
                "action_changed",
                action=action.id,
                incident=action.incident_id,
                kind=action.kind.value,
                target=action.target,
                before=previous.state.value if previous else None,
                after=action.state.value,
                actor=action.decided_by or "stanch",
                ts=now,
            )
        self._dirty_incidents.add(action.incident_id)
        if (
            previous is None
            or previous.is_active != action.is_active
            or (previous.stage != action.stage)
        ):
            self._dirty_policy.add(action.service)
        return action

    def _publish(self, now: float) -> None:
        for service in sorted(self._dirty_policy):
            old = self.policies.get(service)
            version = (old.version if old else 0) + 1
            policy = Policy.from_actions(service, version, self.actions.values())
            if old is not None and old.routes == policy.routes and old.clients == policy.clients:
                continue
            self.policies[service] = policy
            self._holder(service).publish(policy, now)
            self.store.save_policy(policy, now=now)
        self._dirty_policy.clear()

    # ------------------------------------------------------------------ accounting

    def _account(self, points: list[Point]) -> None:
        """Impact of each open incident: requests, failures and protections on what it touches."""
        open_incidents = [i for i in self.incidents.values() if i.is_open]
        if not open_incidents:
            return
        for point in points:
            for incident in open_incidents:
                if point.key.service != incident.service:
                    continue
                covers = point.key.route in incident.routes or (
                    not incident.routes and point.key.route == SERVICE_WIDE
                )
                if not covers:
                    continue
                incident.impact.add(point.requests, point.errors, point.enforced)
                for client, stats in point.clients.items():
                    incident.impact.see_client(client, stats.errors > 0)
                self._dirty_incidents.add(incident.id)

    # ------------------------------------------------------------------ persistence

    def _persist(self) -> None:
        for incident_id in sorted(self._dirty_incidents):
            incident = self.incidents[incident_id]
            self.store.save_incident(incident)
            # Every state change leaves a record: new timeline entries go to listeners (the
            # audit trail, notifiers) once they are safely stored.
            seen = self._announced.get(incident_id, 0)
            for entry in incident.timeline[seen:]:
                self._emit(
                    "timeline",
                    incident=incident_id,
                    ts=entry.ts,
                    kind=entry.kind,
                    actor=entry.actor,
                    text=entry.text,
                    data=dict(entry.data),
                )
            self._announced[incident_id] = len(incident.timeline)
        self._dirty_incidents.clear()

    def _restore(self, now: float) -> None:
        """Open incidents, their actions and the active policy come back after a restart.

        Detectors start cold, so alerts that were firing are re-armed as firing in their
        monitors: they clear only once fresh evidence says so, and the runbook is not asked
        again for actions it already produced.
        """
        saved = self.store.get_meta("detectors") or {}
        for service, route, data in saved.get("series", []):
            key = SeriesKey(service, route)
            monitor = self.monitors[key] = self._monitor(key)
            monitor.restore(data)
        for incident in self.store.open_incidents():
            self.incidents[incident.id] = incident
            self._announced[incident.id] = len(incident.timeline)
            for action in self.store.list_actions(incident_id=incident.id):
                self.actions[action.id] = action
            for alert in incident.firing_alerts:
                key = SeriesKey(alert.service, alert.route)
                if key not in self.monitors:
                    self.monitors[key] = self._monitor(key)
                self.monitors[key].rearm(alert)
        for change in self.store.list_changes():
            self.changes[change.id] = change
        for service, policy in self.store.load_policies().items():
            self.policies[service] = policy
            self._holder(service).publish(policy, now)

    def _holder(self, service: str) -> PolicyHolder:
        holder = self.holders.get(service)
        if holder is None:
            holder = self.holders[service] = PolicyHolder(
                service, self.policies.get(service), self.last_step
            )
        return holder

    # ------------------------------------------------------------------ queries

    def _incident(self, incident_id: str) -> Incident:
        incident = self.incidents.get(incident_id) or self.store.get_incident(incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} does not exist")
        self.incidents[incident_id] = incident
        return incident

    def _action(self, action_id: str) -> Action:
        action = self.actions.get(action_id) or self.store.get_action(action_id)
        if action is None:
            raise NotFound(f"action {action_id} does not exist")
        self.actions[action_id] = action
        return action

    def _actions_of(self, incident_id: str) -> list[Action]:
        return sorted(
            (a for a in self.actions.values() if a.incident_id == incident_id),
            key=lambda a: a.id,
        )

    def incident_actions(self, incident_id: str) -> list[Action]:
        return self._actions_of(incident_id)

    def postmortem(self, incident_id: str) -> PostMortem:
        incident = self._incident(incident_id)
        return draft_postmortem(incident, self._actions_of(incident_id))

    def _emit(self, name: str, **details: Any) -> None:
        for listener in self.listeners:
            try:
                listener(name, details)
            except Exception:  # a broken notifier must not stop the loop
                log.exception("listener failed on %s", name)


__all__ = ["Engine", "EngineConfig", "Listener"]
