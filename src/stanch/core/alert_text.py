"""What an alert says: the clients that explain a load anomaly and the line a responder reads.

Kept apart from :mod:`stanch.core.detection` (which decides *whether* a point is anomalous) so
the wording can change without touching detection, and detection stays readable.
"""

from __future__ import annotations

from stanch.core.alerts import AlertKind
from stanch.core.detectors import Score
from stanch.core.detectors.robust import z_text
from stanch.core.series import SeriesKey
from stanch.core.windows import Point


def explaining_clients(point: Point, excess: float, top: int = 3) -> tuple[str, ...]:
    """Clients whose requests make up at least a third of the excess load, biggest first."""
    if excess <= 0 or not point.clients:
        return ()
    per_second = {c: s.requests / point.interval for c, s in point.clients.items()}
    ranked = sorted(per_second.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(c for c, rps in ranked[:top] if rps >= excess / 3.0 and c != "__other__")


def explain(
    kind: AlertKind,
    score: Score,
    key: SeriesKey,
    point: Point,
    clients: tuple[str, ...],
    detail: str = "",
) -> str:
    """One line a responder can read; ``detail`` (the detector's own account) is appended to
    traffic alerts and words an SLO burn."""
    where = f"{key.service} {key.route}" if not key.is_service_wide else f"service {key.service}"
    if kind is AlertKind.TRAFFIC_SPIKE or kind is AlertKind.TRAFFIC_DROP:
        text = (
            f"request rate {score.observed:.1f}/s vs baseline {score.expected:.1f}/s "
            f"({z_text(score.deviation)}), {where}"
        )
        if clients:
            shares = ", ".join(
                f"{c} {point.clients[c].requests / max(point.requests, 1):.0%}" for c in clients
            )
            text += f"; explained by client(s) {shares} of requests"
        if detail:
            text += f"; detector: {detail}"
        return text
    if kind is AlertKind.ERROR_BURST:
        return (
            f"error ratio {score.observed:.1%} vs baseline {score.expected:.2%} "
            f"({point.errors} of {point.served} requests failed in the last second), {where}"
        )
    if kind is AlertKind.SLO_BURN:
        if detail:  # which tier fired says whether it pages and over what span the budget went
            return f"SLO burn rate: {detail}, {where}"
        return f"SLO burn rate {score.observed:.1f}x vs threshold {score.expected:.1f}x, {where}"
    return (
        f"p95 latency {score.observed * 1000:.0f} ms vs baseline {score.expected * 1000:.0f} ms, "
        f"{where}"
    )
