"""The audit trail: every state change, appended to the store's hash-chained log.

Two kinds of writers. API handlers call :meth:`AuditTrail.record` for each mutating call,
naming the caller (``"erin (responder)"``). The engine's listener hook
(:meth:`AuditTrail.on_engine_event`) records what the engine changes by itself or on a
caller's behalf: every timeline entry, every action state change, every configuration
version, and every alert noise control held back (with the reason and the rule) and what
became of it. Entries are ``api.*``, ``dashboard.*``, ``ingest.*``, ``engine.*``, ``token.*``
or ``runbook.*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stanch.core.audit import AuditEntry
from stanch.sources._common import MAX_ID, clip
from stanch.store import Store

# Engine events about held-back alerts, and the audit action each becomes.
SUPPRESSION_ACTIONS = {
    "alert_suppressed": "engine.alert_suppressed",
    "alert_suppressed_released": "engine.alert_suppressed_released",
    "alert_suppressed_cleared": "engine.alert_suppressed_cleared",
}

log = logging.getLogger("stanch.audit")


class AuditTrail:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        *,
        before: Any = None,
        after: Any = None,
        why: str = "",
    ) -> AuditEntry:
        return self.store.append_audit(
            ts=self.clock(),
            actor=clip(actor or "unknown", MAX_ID),
            action=clip(action, 100),
            target=target,
            before=before,
            after=after,
            why=why,
        )

    def on_engine_event(self, name: str, details: dict[str, Any]) -> None:
        """An engine listener (see :data:`stanch.engine.Listener`)."""
        if name == "timeline":
            data = dict(details.get("data") or {})
            self.record(
                str(details.get("actor") or "stanch"),
                f"engine.timeline.{details.get('kind', '')}",
                str(details.get("incident", "")),
                before=data.pop("before", None),
                after=data.pop("after", None) if "after" in data else (data or None),
                why=str(details.get("text", "")),
            )
        elif name == "action_changed":
            self.record(
                str(details.get("actor") or "stanch"),
                "engine.action",
                str(details.get("action", "")),
                before=details.get("before"),
                after=details.get("after"),
                why=f"{details.get('kind')} on {details.get('target')} "
                f"for {details.get('incident')}",
            )
        elif name == "config_changed":
            changed = details.get("changed") or {}
            self.record(
                str(details.get("actor") or "stanch"),
                "engine.config",
                str(details.get("service", "")),
                before={k: v[0] for k, v in changed.items()},
                after={k: v[1] for k, v in changed.items()},
                why=str(details.get("reason") or f"version {details.get('version')}"),
            )
        elif name in SUPPRESSION_ACTIONS:
            self._suppression(name, details)

    def _suppression(self, name: str, details: dict[str, Any]) -> None:
        """An alert held back (or let go): an operator asking "why did this not page?" after
        a restart finds the answer here, since the engine keeps suppressions in memory only."""
        alert = {
            key: str(details[key])
            for key in ("kind", "service", "route", "rule", "cause")
            if details.get(key)
        }
        self.record(
            "stanch",
            SUPPRESSION_ACTIONS[name],
            str(details.get("fingerprint", "")),
            after=alert or None,
            why=str(details.get("reason") or "the alert stopped firing while held back"),
        )
