"""The state every part of the engine shares, and the small helpers they all use.

:class:`~stanch.engine.Engine` is composed of this base, the responder
(``stanch._responder``), the noise gate (``stanch._noise_gate``) and the change tracker
(``stanch._changes``: configuration versions, deploys and the suspects they make); the
attributes are set in ``Engine.__init__``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stanch.buffer import PolicyHolder
from stanch.core.actions import Action
from stanch.core.alerts import Alert
from stanch.core.config import ConfigStore
from stanch.core.detection import SeriesMonitor
from stanch.core.errors import NotFound
from stanch.core.events import ChangeEvent
from stanch.core.incidents import Incident
from stanch.core.noise import NoiseControl, Suppression
from stanch.core.policy import Policy
from stanch.core.postmortem import PostMortem, draft_postmortem
from stanch.core.runbook import Runbook
from stanch.core.series import SeriesKey
from stanch.store import Store

if TYPE_CHECKING:
    from stanch.engine import EngineConfig

log = logging.getLogger("stanch.engine")

Listener = Callable[[str, dict[str, Any]], None]
"""Called with (event name, details) on incident_opened, incident_reopened, severity_changed,
approval_needed, action_applied, action_lifted, action_changed, incident_resolved,
config_changed and timeline (every stored timeline entry): the seam for notifications, the
audit trail and the demo; alert_suppressed for alerts noise control holds back."""


class EngineState:
    store: Store
    runbook: Runbook
    config: EngineConfig
    monitors: dict[SeriesKey, SeriesMonitor]
    holders: dict[str, PolicyHolder]
    config_stores: dict[str, ConfigStore]
    incidents: dict[str, Incident]
    actions: dict[str, Action]
    changes: dict[str, ChangeEvent]
    policies: dict[str, Policy]
    listeners: list[Listener]
    noise: NoiseControl
    held: dict[str, Alert]
    holding: dict[str, Suppression]
    suppressed: deque[Suppression]
    last_step: float
    _dirty_incidents: set[str]
    _dirty_policy: set[str]
    _announced: dict[str, int]

    def _alert_fired(self, alert: Alert, now: float) -> None:
        raise NotImplementedError  # the engine places alerts into incidents

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

    def _holder(self, service: str) -> PolicyHolder:
        holder = self.holders.get(service)
        if holder is None:
            holder = self.holders[service] = PolicyHolder(
                service, self.policies.get(service), self.last_step
            )
        return holder

    def _live_alert(self, alert: Alert) -> Alert | None:
        monitor = self.monitors.get(SeriesKey(alert.service, alert.route))
        return monitor.firing.get(alert.kind) if monitor else None

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
