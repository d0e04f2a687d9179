"""What the overview and incident pages show, computed from the engine and the history.

Nothing here writes: these functions read the engine's live state (monitors, incidents,
actions), the store for what the engine no longer holds (closed incidents), and the
:class:`~stanch.server.dashboard.history.SignalHistory` for charts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from stanch.core.actions import Action, ActionState
from stanch.core.incidents import Incident, IncidentState
from stanch.core.series import SERVICE_WIDE, SeriesKey
from stanch.server.context import ServerContext
from stanch.server.dashboard.history import SignalHistory

INCIDENT_LOOKBACK_S = 600.0  # charts start this long before the onset
INCIDENT_AFTER_S = 300.0  # and end this long after resolution
MAX_CHART_ROUTES = 4
MAX_CHART_POINTS = 200  # per chart: finer is noise at this size (and more to send)

_SIGNAL_CHART = {"errors": "err", "latency_p95": "p95", "rate": "rate"}
_CHART_TITLE = {"rate": "Request rate", "err": "Error ratio", "p95": "p95 latency"}
_CHART_UNIT = {"rate": "rps", "err": "ratio", "p95": "seconds"}
_HEALTH_ORDER = {"failing": 0, "unusual": 1, "degraded": 2, "ok": 3, "learning": 4}


@dataclass(slots=True)
class SeriesRow:
    key: SeriesKey
    dom_id: str
    health: str  # failing, unusual, degraded, ok, learning
    why: str
    latest: dict[str, float | None]

    @property
    def label(self) -> str:
        return "all routes" if self.key.is_service_wide else self.key.route


@dataclass(slots=True)
class ServiceBlock:
    name: str
    rows: list[SeriesRow] = field(default_factory=list)
    # What its agents lost before the server saw it (their reports; 0 and None: nothing).
    agents_dropped: int = 0
    last_drop_at: float | None = None

    @property
    def health(self) -> str:
        return min((r.health for r in self.rows), key=_HEALTH_ORDER.__getitem__, default="ok")


def series_id(key: SeriesKey) -> str:
    """A stable DOM/JSON id for a series (route names are not valid ids)."""
    return "s" + hashlib.sha256(str(key).encode()).hexdigest()[:10]


def overview(ctx: ServerContext, history: SignalHistory) -> list[ServiceBlock]:
    engine = ctx.engine
    open_incidents = [i for i in engine.incidents.values() if i.is_open]
    active = [a for a in engine.actions.values() if a.is_active]
    keys = set(history.series_keys()) | set(engine.monitors)
    blocks: dict[str, ServiceBlock] = {}
    for key in sorted(keys, key=lambda k: (k.service, not k.is_service_wide, k.route)):
        health, why = _health(ctx, key, open_incidents, active, history)
        row = SeriesRow(key, series_id(key), health, why, history.latest(key) or {})
        blocks.setdefault(key.service, ServiceBlock(key.service)).rows.append(row)
    for block in blocks.values():
        agents = ctx.agents.get(block.name)
        if agents is not None and agents.dropped:
            block.agents_dropped, block.last_drop_at = agents.dropped, agents.last_drop_at
    return list(blocks.values())


def _health(
    ctx: ServerContext,
    key: SeriesKey,
    incidents: list[Incident],
    active: list[Action],
    history: SignalHistory,
) -> tuple[str, str]:
    monitor = ctx.engine.monitors.get(key)
    if monitor is not None and monitor.firing:
        return "failing", "; ".join(a.explanation for a in monitor.firing.values())
    for incident in incidents:
        covers = key.route in incident.routes or (
            key.is_service_wide and not incident.routes and incident.service == key.service
        )
        if incident.service == key.service and covers:
            return "degraded", f"{incident.id} is open ({incident.state})"
    for action in active:
        if action.service == key.service and action.target == key.route:
            return "degraded", f"{action.kind} in force ({action.id})"
    if monitor is not None:
        hot = [k for k, s in monitor.last_scores.items() if s.value >= 0.5 and not s.warming]
        if hot:
            return "unusual", "over threshold, not yet long enough to alert: " + ", ".join(
                sorted(k.value for k in hot)
            )
        if any(s.warming for s in monitor.last_scores.values()):
            return "learning", "the detectors are still learning this series"
    latest = history.latest(key)
    if latest is None:
        return "learning", "no data yet"
    return "ok", "within the expected band"


def sparklines(history: SignalHistory) -> dict[str, Any]:
    """Last-hour columns of every series, for the overview's sparklines."""
    return {
        "series": {
            series_id(key): {"label": str(key), **history.last_hour(key).to_json()}
            for key in history.series_keys()
        }
    }


def open_incidents(ctx: ServerContext) -> list[Incident]:
    found = [i for i in ctx.engine.incidents.values() if i.is_open]
    return sorted(found, key=lambda i: (-i.severity.rank, -i.opened_at))


def pending_actions(ctx: ServerContext) -> list[Action]:
    found = [a for a in ctx.engine.actions.values() if a.state is ActionState.PENDING]
    return sorted(found, key=lambda a: (a.created_at, a.id))


def find_incident(ctx: ServerContext, incident_id: str) -> tuple[Incident, list[Action]] | None:
    """The engine's live copy if it holds one, else the stored one (without caching it)."""
    incident = ctx.engine.incidents.get(incident_id)
    if incident is not None:
        return incident, ctx.engine.incident_actions(incident_id)
    stored = ctx.store.get_incident(incident_id)
    if stored is None:
        return None
    return stored, ctx.store.list_actions(incident_id=incident_id)


def pending_by_incident(ctx: ServerContext) -> dict[str, int]:
    counts: dict[str, int] = {}
    for action in ctx.engine.actions.values():
        if action.state is ActionState.PENDING:
            counts[action.incident_id] = counts.get(action.incident_id, 0) + 1
    return counts


def ended_at(incident: Incident) -> float | None:
    return incident.entered.get(IncidentState.RESOLVED.value) if not incident.is_open else None


def chart_window(incident: Incident, now: float) -> tuple[float, float]:
    end = ended_at(incident)
    until = now if end is None else min(now, end + INCIDENT_AFTER_S)
    since = min(incident.onset, incident.opened_at) - INCIDENT_LOOKBACK_S
    return max(since, until - 3600.0), until


def chart_step(seconds: float, interval: float) -> float:
    """The finest round step that keeps a chart of ``seconds`` under MAX_CHART_POINTS."""
    for step in (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0):
        if step >= interval and seconds / step <= MAX_CHART_POINTS:
            return step
    return 300.0


def incident_charts(
    incident: Incident, actions: list[Action], history: SignalHistory, now: float
) -> dict[str, Any]:
    """Charts of the incident's affected signals, with bands, alert markers and action spans."""
    since, until = chart_window(incident, now)
    routes = sorted(incident.routes)[:MAX_CHART_ROUTES] or [SERVICE_WIDE]
    step = chart_step(until - since, history.interval_s)
    charts = []
    for route in routes:
        key = SeriesKey(incident.service, route)
        window = history.between(key, since, until, step)
        alerts = [a for a in incident.alerts.values() if a.route == route]
        wanted = [_SIGNAL_CHART[a.signal] for a in alerts if a.signal in _SIGNAL_CHART]
        signals = list(dict.fromkeys([*wanted, "rate"]))[:3]
        for signal in signals:
            columns = window.columns
            charts.append(
                {
                    "id": f"{series_id(key)}-{signal}",
                    "route": route,
                    "signal": signal,
                    "title": f"{_CHART_TITLE[signal]} — {route if route != '*' else 'service'}",
                    "unit": _CHART_UNIT[signal],
                    "t": window.t,
                    "value": columns.get(signal, []),
                    "expected": columns.get(f"{signal}_exp", []),
                    "lo": columns.get("rate_lo", []) if signal == "rate" else [],
                    "hi": columns.get(f"{signal}_hi", []),
                }
            )
    markers = [
        {
            "t": a.started_at,
            "label": f"{a.kind.value} on {a.route if a.route != SERVICE_WIDE else 'the service'}",
            "route": a.route,
        }
        for a in sorted(incident.alerts.values(), key=lambda a: a.started_at)
    ]
    spans = [
        {
            "from": a.applied_at,
            "to": a.ended_at if a.ended_at is not None else None,
            "label": f"{a.kind.value} on {a.target}",
            "phase": a.kind.phase,
            "state": a.state.value,
        }
        for a in actions
        if a.applied_at is not None
    ]
    return {
        "since": since,
        "until": until,
        "step": step,
        "now": now,
        "charts": charts,
        "markers": markers,
        "spans": spans,
    }
