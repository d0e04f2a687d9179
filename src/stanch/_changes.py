"""The engine's record of changes: configuration versions and deploys, and the suspects
they make for each incident.

A mixin of :class:`~stanch.engine.Engine`, split out so each module stays readable; it
holds no state of its own. Every change is kept for root-cause ranking: a configuration
change made through the engine is validated, versioned and persisted, and each open
incident of the service is ranked again when any change arrives.
"""

from __future__ import annotations

from typing import Any

from stanch._engine_state import EngineState
from stanch.core.config import ConfigStore, ConfigVersion
from stanch.core.errors import NotFound
from stanch.core.events import ChangeEvent
from stanch.core.incidents import Incident
from stanch.core.rca import rank_suspects


class ChangeTracker(EngineState):
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
        version, change = self._config_store(service).set(
            now, changes, author=author, reason=reason
        )
        return self._config_changed(service, version, change, now)

    def rollback_config(
        self, service: str, now: float, to_version: int, *, author: str, reason: str = ""
    ) -> ChangeEvent:
        """Make an earlier configuration version current again (as a new version)."""
        version, change = self._config_store(service).rollback(
            now, to_version, author=author, reason=reason
        )
        return self._config_changed(service, version, change, now)

    def _config_store(self, service: str) -> ConfigStore:
        store = self.config_stores.get(service)
        if store is None:
            raise NotFound(f"no configuration store for service {service!r}")
        return store

    def _config_changed(
        self, service: str, version: ConfigVersion, change: ChangeEvent, now: float
    ) -> ChangeEvent:
        """Persist a new configuration version, rank it as a change, tell the listeners."""
        self.store.add_config_version(service, version)
        self.record_change(change)
        self._emit(
            "config_changed",
            service=service,
            version=version.version,
            actor=version.author,
            changed={k: list(v) for k, v in version.changed.items()},
            reason=version.reason,
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
