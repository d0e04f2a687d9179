"""NoiseControl: the silences and windows in force, those ended lately, and the one check
every alert passes before it may page (silence, then window, then inhibition).

A suppressed alert is never lost: :meth:`NoiseControl.check` says why it is held
(a :class:`Suppression`, which the engine records), and if it is still firing when its
silence or window ends, or when the alert that inhibited it clears, it goes on to open or
join an incident then (as Alertmanager does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from stanch.core.alerts import Alert
from stanch.core.errors import IllegalTransition, NotFound
from stanch.core.noise.inhibition import explains
from stanch.core.noise.rules import MaintenanceWindow, Silence
from stanch.core.noise.stored import (
    rule_to_dict,
    silence_from_dict,
    silence_to_dict,
    window_from_dict,
    window_to_dict,
)
from stanch.core.series import SERVICE_WIDE

MAX_RULES: Final = 1000  # silences and windows in force: every alert is checked against each
MAX_ENDED: Final = 200  # ended rules kept for the record (listing, the dashboard)


@dataclass(frozen=True, slots=True)
class Suppression:
    """One alert held back: why, by which rule (a silence, a window, or the fingerprint of
    the inhibiting alert), and what the alert was."""

    fingerprint: str
    reason: str
    rule: str
    at: float
    cause: str = ""  # "silence", "maintenance" or "inhibition"
    kind: str = ""
    service: str = ""
    route: str = ""
    via_routes: bool = False  # a service-wide alert held because its routes are held


@dataclass(frozen=True, slots=True)
class Ended:
    """A silence or window no longer in force, kept for the record: when it ended, and who
    ended it ("" when it simply ran out)."""

    rule: Silence | MaintenanceWindow
    at: float
    by: str


class NoiseControl:
    """The silences and maintenance windows in force, the ones that ended lately, and the
    inhibition rule."""

    def __init__(self) -> None:
        self.silences: dict[str, Silence] = {}
        self.windows: dict[str, MaintenanceWindow] = {}
        self.ended: list[Ended] = []  # oldest first, at most MAX_ENDED

    def check(self, alert: Alert, now: float, firing: Iterable[Alert] = ()) -> Suppression | None:
        """Why ``alert`` must not page right now, or None."""
        about: dict[str, Any] = {
            "kind": alert.kind.value,
            "service": alert.service,
            "route": alert.route,
        }
        for silence in self.silences.values():
            if silence.active(now) and silence.matches(alert):
                return Suppression(
                    alert.fingerprint,
                    f"silenced by {silence.id} ({silence.created_by}: "
                    f"{silence.comment or 'no comment'})",
                    silence.id,
                    now,
                    "silence",
                    **about,
                )
        for window in self.windows.values():
            if window.active(now) and window.covers(alert):
                return Suppression(
                    alert.fingerprint,
                    f"maintenance window {window.id}"
                    + (f" ({window.comment})" if window.comment else ""),
                    window.id,
                    now,
                    "maintenance",
                    **about,
                )
        for other in firing:
            if explains(other, alert):
                return Suppression(
                    alert.fingerprint,
                    f"inhibited by the service-wide {other.kind} on "
                    f"{other.service} ({other.explanation})",
                    other.fingerprint,
                    now,
                    "inhibition",
                    **about,
                )
        return None

    def muted_causes(
        self,
        alert: Alert,
        now: float,
        causes: Iterable[str],
        *,
        held_by: Suppression | None = None,
    ) -> Suppression | None:
        """Hold a service-wide ``alert`` whose troubled routes (``causes``: the service's routes
        where the same kind fires or is about to) are all held by silences or windows.

        Silencing ``POST /checkout`` for a load test must also keep the service-wide error
        burst that checkout's failures make from paging. One troubled route that nothing holds
        and the alert pages: it is no longer only what was muted. ``held_by`` (this alert's
        suppression so far) keeps holding it, if it was for this reason, while no route is
        troubled: the routes' alerts clear a few points before the service's, which is no
        reason to page at the end of a silenced load test.
        """
        if alert.route != SERVICE_WIDE:
            return None
        holding: list[tuple[str, Silence | MaintenanceWindow]] = []
        for route in causes:
            rule = self.rule_holding(replace(alert, route=route), now)
            if rule is None:
                return None
            holding.append((route, rule))
        if not holding:
            if held_by is None or not held_by.via_routes:
                return None
            return replace(held_by, at=now)
        first = holding[0][1]
        names = ", ".join(f"{route} ({rule.id})" for route, rule in holding[:5])
        more = f" and {len(holding) - 5} more" if len(holding) > 5 else ""
        return Suppression(
            alert.fingerprint,
            f"made of routes held back: {names}{more}",
            first.id,
            now,
            "silence" if isinstance(first, Silence) else "maintenance",
            kind=alert.kind.value,
            service=alert.service,
            route=alert.route,
            via_routes=True,
        )

    def rule_holding(self, alert: Alert, now: float) -> Silence | MaintenanceWindow | None:
        """The silence, or else the maintenance window, in force that holds ``alert``."""
        return next(
            (s for s in self.silences.values() if s.active(now) and s.matches(alert)), None
        ) or next((w for w in self.windows.values() if w.active(now) and w.covers(alert)), None)

    def add(self, rule: Silence | MaintenanceWindow) -> None:
        """Put a rule in force (checked by the caller: see ``check_new_*``)."""
        if rule.id in self.silences or rule.id in self.windows:
            raise IllegalTransition(f"{rule.id} exists already")
        if len(self.silences) + len(self.windows) >= MAX_RULES:
            raise IllegalTransition(
                f"{MAX_RULES} silences and maintenance windows are in force already: "
                "expire some first"
            )
        if isinstance(rule, Silence):
            self.silences[rule.id] = rule
        else:
            self.windows[rule.id] = rule

    def listed(
        self, now: float, *, expired: bool = False
    ) -> tuple[list[Silence], list[MaintenanceWindow]]:
        """The silences and the windows held, each by start then id: those not over at
        ``now``, or every one when ``expired`` (over, but not yet retired by a step)."""
        silences = sorted(
            (s for s in self.silences.values() if expired or s.status(now) != "expired"),
            key=lambda s: (s.starts_at, s.id),
        )
        windows = sorted(
            (w for w in self.windows.values() if expired or w.status(now) != "expired"),
            key=lambda w: (w.starts_at or 0.0, w.id),
        )
        return silences, windows

    def end_silence(self, silence_id: str, now: float, by: str) -> Ended:
        """Expire a silence now; alerts it held page at the next step if still firing."""
        silence = self.silences.pop(silence_id, None)
        if silence is None:
            raise self._missing(silence_id, Silence, "silence")
        return self._retire(silence, now, by)

    def end_window(self, window_id: str, now: float, by: str) -> Ended:
        window = self.windows.pop(window_id, None)
        if window is None:
            raise self._missing(window_id, MaintenanceWindow, "maintenance window")
        return self._retire(window, now, by)

    def _missing(
        self, rule_id: str, kind: type[Silence] | type[MaintenanceWindow], noun: str
    ) -> Exception:
        for ended in self.ended:
            if ended.rule.id == rule_id and isinstance(ended.rule, kind):
                return IllegalTransition(f"{noun} {rule_id} has ended already")
        return NotFound(f"no {noun} {rule_id} is in force")

    def _retire(self, rule: Silence | MaintenanceWindow, at: float, by: str) -> Ended:
        ended = Ended(rule, at, by)
        self.ended.append(ended)
        del self.ended[:-MAX_ENDED]
        return ended

    def expire(self, now: float) -> list[str]:
        """Retire silences and one-off windows that are over; returns their ids."""
        over: list[Silence | MaintenanceWindow] = [
            s for s in self.silences.values() if s.ends_at <= now
        ]
        over += [w for w in self.windows.values() if w.ends_at is not None and w.ends_at <= now]
        for rule in over:
            self.silences.pop(rule.id, None)
            self.windows.pop(rule.id, None)
            self._retire(rule, rule.ends_at if rule.ends_at is not None else now, "")
        return [rule.id for rule in over]

    def to_dict(self) -> dict[str, Any]:
        return {
            "silences": [silence_to_dict(s) for s in self.silences.values()],
            "windows": [window_to_dict(w) for w in self.windows.values()],
            "ended": [
                {
                    "type": "silence" if isinstance(e.rule, Silence) else "window",
                    "rule": rule_to_dict(e.rule),
                    "at": e.at,
                    "by": e.by,
                }
                for e in self.ended
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseControl:
        """What :meth:`to_dict` saved, or what earlier versions saved (no "ended", matchers
        as ``[field, pattern]``)."""
        control = cls()
        for raw in data.get("silences", []):
            silence = silence_from_dict(raw)
            control.silences[silence.id] = silence
        for raw in data.get("windows", []):
            window = window_from_dict(raw)
            control.windows[window.id] = window
        for raw in data.get("ended", [])[-MAX_ENDED:]:
            rule_doc = raw["rule"]
            rule = (
                silence_from_dict(rule_doc)
                if raw.get("type") == "silence"
                else window_from_dict(rule_doc)
            )
            control.ended.append(Ended(rule, float(raw["at"]), str(raw.get("by", ""))))
        return control
