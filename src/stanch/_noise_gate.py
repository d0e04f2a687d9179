"""The engine's noise gate: silences, maintenance windows and inhibition, applied to alerts.

A mixin of :class:`~stanch.engine.Engine` (the rules themselves live in ``core.noise``);
alerts held back here are recorded with the reason and page later if their reason ends
while they still fire.
"""

from __future__ import annotations

from stanch._engine_state import EngineState
from stanch.core.alerts import Alert
from stanch.core.errors import NotFound
from stanch.core.noise import MaintenanceWindow, Matcher, Silence
from stanch.core.series import SERVICE_WIDE

BROAD_SHARE = 0.75  # share of a service's traffic that makes a service-wide alert "broad"


class NoiseGate(EngineState):
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
        if not self._held_back(alert, now, service_firing):
            self._alert_fired(alert, now)

    def _held_back(self, alert: Alert, now: float, service_firing: list[Alert]) -> bool:
        """Hold ``alert`` back if noise control says so, recording the reason the first time."""
        suppression = self.noise.check(alert, now, service_firing)
        if suppression is None:
            return False
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
        return True

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
