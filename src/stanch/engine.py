"""The engine: one ``step(now)`` advances the whole loop, whatever the clock.

It drains request outcomes from the enforcement points, closes time windows, runs detection,
groups alerts into incidents, asks the runbook what to do, applies what is approved, ranks
suspects, verifies that mitigations help, lifts them in stages once recovery holds, and writes
the post-mortem. Decisions live in the pure core; the engine only wires them to the store, the
policy holders and the configuration stores, and it never reads the wall clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from stanch._changes import ChangeTracker
from stanch._engine_state import Listener, log
from stanch._noise_gate import NoiseGate
from stanch._responder import Responder
from stanch.buffer import EventBuffer, PolicyHolder
from stanch.core.actions import Action, ActionState
from stanch.core.alerts import Alert
from stanch.core.config import ConfigStore
from stanch.core.correlation import CorrelationConfig, place
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig, route_config
from stanch.core.events import ChangeEvent, RequestEvent
from stanch.core.incidents import Incident, alert_title
from stanch.core.noise import NoiseControl, Suppression
from stanch.core.planning import plan_actions
from stanch.core.policy import Policy
from stanch.core.recovery import RecoveryConfig
from stanch.core.runbook import Runbook
from stanch.core.series import (
    DEFAULT_MAX_ROUTES_PER_SERVICE,
    DEFAULT_MAX_SERIES,
    SERVICE_WIDE,
    CardinalityGuard,
    SeriesKey,
)
from stanch.core.totals import DEFAULT_MAX_SERIES as DEFAULT_MAX_SERIES_TOTALS
from stanch.core.totals import SeriesTotals
from stanch.core.windows import Point, WindowAggregator
from stanch.store import Store


@dataclass(frozen=True, slots=True)
class EngineConfig:
    interval_s: float = 1.0
    max_series: int = DEFAULT_MAX_SERIES  # route series in all (see CardinalityGuard)
    max_routes_per_service: int = DEFAULT_MAX_ROUTES_PER_SERVICE  # route series per service
    checkpoint_every_s: float = 10.0  # how often learned detector state is saved
    decision_poll_s: float = 1.0  # how often decisions queued by other processes are read
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    # Per-route overrides (exact route key or glob; "*" = the service-wide series), as
    # proposed by `stanch tune`.
    detection_routes: Mapping[str, DetectionConfig] = field(default_factory=dict, hash=False)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)


class Engine(Responder, NoiseGate, ChangeTracker):
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
        self.guard = CardinalityGuard(self.config.max_series, self.config.max_routes_per_service)
        # Cumulative per-series counts for /metrics: room for every admitted route series, its
        # service's overflow and service-wide series (the totals' own cap is the last resort).
        self.totals = SeriesTotals(max(DEFAULT_MAX_SERIES_TOTALS, 2 * self.config.max_series))
        self.record = record  # history recorder for backtests (evaluation.recorders.PointRecorder)
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
        self.holding: dict[str, Suppression] = {}  # ... and the record of each one's hold
        self.suppressed: deque[Suppression] = deque(maxlen=10_000)
        self._restore(now)

    # ------------------------------------------------------------------ wiring

    def attach(self, service: str, *, version: str = "") -> tuple[EventBuffer, PolicyHolder]:
        """The buffer and policy holder an enforcement point of ``service`` uses."""
        buffer = self.buffers.get(service)
        if buffer is None:
            buffer = self.buffers[service] = EventBuffer(service, version=version)
        return buffer, self._holder(service)

    def ingest_alert(self, alert: Alert, now: float) -> str | None:
        """An alert from outside (Alertmanager, PagerDuty, a user report): correlated, planned
        and recovered like the detectors' own. Idempotent: the same firing alert again only
        updates it. Returns the incident it belongs to, if any."""
        if alert.is_firing:
            known_elsewhere = alert.fingerprint in self._known_fingerprints()
            if not known_elsewhere and self._held_back(alert, now, []):
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
        elif not self._cleared_while_held(alert.fingerprint, now):
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
        for notice in self.guard.take_notices():  # the core logs nothing itself
            log.warning("%s", notice)
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
                elif not self._cleared_while_held(alert.fingerprint, now):
                    self._alert_resolved(alert, now)
        # Route alerts first: a service-wide alert then joins the route's incident it explains.
        fired.sort(key=lambda a: (a.route == SERVICE_WIDE, a.started_at, a.fingerprint))
        service_firing = self._broad_service_alerts(now)
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
                    if live.severity > incident.severity:  # e.g. a slow SLO burn turned fast
                        incident.add_alert(live, now)
                        self._emit(
                            "severity_changed",
                            incident=incident.id,
                            severity=incident.severity.value,
                        )
                    incident.alerts[fp] = live
                    changed = True
            if changed:
                self._dirty_incidents.add(incident.id)

    def _monitor(self, key: SeriesKey) -> SeriesMonitor:
        config = route_config(key.route, self.config.detection, self.config.detection_routes)
        return SeriesMonitor(key, config)

    def _alert_fired(self, alert: Alert, now: float) -> None:
        placement = place(alert, self.incidents.values(), now, self.config.correlation)
        incident = placement.incident
        if incident is None:
            incident = self._open_incident(alert, now)
        elif placement.reopen:
            incident.reopen(alert, now)
            self._emit("incident_reopened", incident=incident.id, title=incident.title)
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
        incident = Incident(
            id=f"INC-{number:04d}",
            service=alert.service,
            title=alert_title(alert),
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

    # ------------------------------------------------------------------ queries


__all__ = ["Engine", "EngineConfig", "Listener"]
