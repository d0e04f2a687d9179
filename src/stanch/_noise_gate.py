"""The engine's noise gate: silences, maintenance windows and inhibition, applied to alerts.

A mixin of :class:`~stanch.engine.Engine` (the rules themselves live in ``core.noise``);
alerts held back here are recorded with the reason and page later if their reason ends
while they still fire. Listeners hear ``alert_suppressed`` when an alert is first held back,
``alert_suppressed_released`` when it pages after all, and ``alert_suppressed_cleared`` when
it stopped firing while held (it never paged): the audit trail keeps all three, so why an
alert did not page survives a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from stanch._engine_state import EngineState
from stanch.core.alerts import Alert
from stanch.core.noise import (
    Ended,
    MaintenanceWindow,
    Matcher,
    Silence,
    Suppression,
    check_new_silence,
    check_new_window,
)
from stanch.core.series import SERVICE_WIDE

BROAD_SHARE = 0.5  # share of a service's traffic that makes a service-wide alert "broad"
BROAD_ROUTES = 2  # ... on at least this many routes: one route alone is a cause, never an echo
NOISE_META = "noise"


class NoiseGate(EngineState):
    def _broad_service_alerts(self, now: float) -> list[Alert]:
        """Service-wide alerts that are broad: at least two routes are troubled by the same
        kind (firing, or in a run of bad points that may fire) and held by no silence or
        window, and together they carry at least half the service's traffic. Only those may
        inhibit route alerts (see ``core.noise``): one route making a service-wide alert,
        however busy, pages as itself (its runbook rules apply), and a route under planned
        work does not make the others' trouble look service-wide.

        Troubled rather than firing, and half rather than most: in an outage the routes
        fire a point or a few apart, and quiet routes (the long tail, the overflow series)
        may never fire at all, so counting only firing routes against three quarters left
        the service-wide alert "narrow" through the very points that matter, and every
        route paged on its own."""
        broad = []
        for key, monitor in self.monitors.items():
            if key.route != SERVICE_WIDE:
                continue
            for kind, alert in monitor.firing.items():
                shares = [
                    m.share
                    for k, m in self.monitors.items()
                    if k.service == key.service
                    and k.route != SERVICE_WIDE
                    and m.troubled(kind)
                    and self.noise.rule_holding(replace(alert, route=k.route), now) is None
                ]
                if len(shares) >= BROAD_ROUTES and sum(shares) >= BROAD_SHARE:
                    broad.append(alert)
        return broad

    def _route_alert(self, alert: Alert, now: float, service_firing: list[Alert]) -> None:
        """Page for ``alert``, or hold it back with the reason when noise control says so."""
        if not self._held_back(alert, now, service_firing):
            self._alert_fired(alert, now)

    def _held_back(self, alert: Alert, now: float, service_firing: list[Alert]) -> bool:
        """Hold ``alert`` back if noise control says so, recording the reason the first time."""
        suppression = self._suppression(alert, now, service_firing)
        if suppression is None:
            return False
        self.held[alert.fingerprint] = alert
        self._hold(alert, suppression, now)
        return True

    def _hold(self, alert: Alert, suppression: Suppression, now: float) -> None:
        """Record why ``alert`` is held, once per hold: again only when what holds it changes
        (its silence ended, a window still covers it), so the record names the rule holding
        it now and the earlier one reads "no longer held"."""
        current = self.holding.get(alert.fingerprint)
        if current is not None and (current.cause, current.rule) == (
            suppression.cause,
            suppression.rule,
        ):
            return
        self.holding[alert.fingerprint] = suppression
        self.suppressed.append(suppression)
        self._emit(
            "alert_suppressed",
            fingerprint=alert.fingerprint,
            kind=alert.kind.value,
            service=alert.service,
            route=alert.route,
            reason=suppression.reason,
            rule=suppression.rule,
            cause=suppression.cause,
            explanation=alert.explanation,
            ts=now,
        )

    def still_holds(self, suppression: Suppression) -> bool:
        """Is this record's hold still on? Not the same as "an alert with its fingerprint is
        held now": the same alert held again later (it cleared and came back, or another rule
        took over) is another hold, with its own record."""
        return self.holding.get(suppression.fingerprint) is suppression

    def _unhold(self, fingerprint: str) -> None:
        self.holding.pop(fingerprint, None)
        self.held.pop(fingerprint, None)

    def _cleared_while_held(self, fingerprint: str, now: float) -> bool:
        """If the alert that stopped firing was held back, say it never paged and let it go
        (True); False if it was not held."""
        held = self.held.get(fingerprint)
        if held is None:
            return False
        self._emit_unheld("alert_suppressed_cleared", held, now)
        self._unhold(fingerprint)
        return True

    def _suppression(
        self,
        alert: Alert,
        now: float,
        service_firing: list[Alert],
        held_by: Suppression | None = None,
    ) -> Suppression | None:
        """Why ``alert`` must not page now: a rule or inhibition, or, for a service-wide
        alert, routes all held back (see ``NoiseControl.muted_causes``)."""
        suppression = self.noise.check(alert, now, service_firing)
        if suppression is not None or alert.route != SERVICE_WIDE:
            return suppression
        causes = [
            key.route
            for key, monitor in self.monitors.items()
            if key.service == alert.service
            and key.route != SERVICE_WIDE
            and monitor.troubled(alert.kind)
        ]
        return self.noise.muted_causes(alert, now, causes, held_by=held_by)

    def _last_suppression(self, fingerprint: str) -> Suppression | None:
        """Why the alert is held back now, if it is."""
        return self.holding.get(fingerprint)

    def _release_held(self, now: float, service_firing: list[Alert]) -> None:
        """Held alerts whose reason is gone (silence over, inhibitor cleared) page now."""
        for fingerprint, alert in list(self.held.items()):
            live = self._live_alert(alert) if alert.source == "detector" else alert
            if live is None:
                self._emit_unheld("alert_suppressed_cleared", alert, now)
                self._unhold(fingerprint)
                continue
            suppression = self._suppression(
                live, now, service_firing, self._last_suppression(fingerprint)
            )
            if suppression is None:
                self._emit_unheld("alert_suppressed_released", live, now)
                self._unhold(fingerprint)
                self._alert_fired(live, now)
            else:
                self._hold(live, suppression, now)

    def _emit_unheld(self, name: str, alert: Alert, now: float) -> None:
        """Tell listeners a held alert is no longer held, naming the rule that held it."""
        fingerprint = alert.fingerprint
        held_by = self._last_suppression(fingerprint)
        rule = held_by.rule if held_by else "noise control"
        if name == "alert_suppressed_cleared":
            reason = f"stopped firing while held back by {rule}: it never paged"
        else:
            reason = f"{rule} no longer holds it back: it pages now"
        self._emit(
            name,
            fingerprint=fingerprint,
            kind=alert.kind.value,
            service=alert.service,
            route=alert.route,
            rule=rule if held_by else "",
            reason=reason,
            ts=now,
        )

    # -- the rules ----------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: Sequence[Matcher | tuple[str, str]],
        *,
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str = "",
        now: float | None = None,
    ) -> Silence:
        """Mute matching alerts for a while; they are still recorded, with the reason.

        Refused (``ValidationError``) if it would mute everything, is too large or too long,
        or is over by ``now`` (default: the last step)."""
        silence = Silence(
            "",
            tuple(m if isinstance(m, Matcher) else Matcher(*m) for m in matchers),
            starts_at,
            ends_at,
            created_by,
            comment,
        )
        check_new_silence(silence, self.last_step if now is None else now)
        silence = replace(silence, id=f"S-{self.store.next_id('silence'):04d}")
        self.noise.add(silence)
        self._save_noise()
        return silence

    def add_maintenance(
        self, window: MaintenanceWindow, *, now: float | None = None
    ) -> MaintenanceWindow:
        """Planned work: alerts it covers are held back while it lasts. A window without an
        id gets the next ``M-NNNN``."""
        check_new_window(window, self.last_step if now is None else now)
        if not window.id:
            window = replace(window, id=f"M-{self.store.next_id('maintenance'):04d}")
        self.noise.add(window)
        self._save_noise()
        return window

    def expire_silence(self, silence_id: str, *, now: float, actor: str) -> Ended:
        """End a silence now (kept in ``noise.ended``); what it held pages at the next step
        if still firing."""
        ended = self.noise.end_silence(silence_id, now, actor)
        self._save_noise()
        return ended

    def expire_maintenance(self, window_id: str, *, now: float, actor: str) -> Ended:
        ended = self.noise.end_window(window_id, now, actor)
        self._save_noise()
        return ended

    def remove_noise_rule(
        self, rule_id: str, *, now: float | None = None, actor: str = ""
    ) -> Ended:
        """End a silence or a window, whichever ``rule_id`` names."""
        at = self.last_step if now is None else now
        if rule_id in self.noise.windows:
            return self.expire_maintenance(rule_id, now=at, actor=actor)
        return self.expire_silence(rule_id, now=at, actor=actor)

    def _save_noise(self) -> None:
        self.store.set_meta(NOISE_META, self.noise.to_dict())
