"""Suspects v1: recent changes near the onset that touch the affected routes, and the clients
that explain a load anomaly.

A change scores by two independent pieces of evidence multiplied together: *time* (how shortly
before the onset it landed; exponential decay with ``half_life_s``; a change after the onset
can only be a weak suspect since effects rarely precede causes, but clocks drift) and *scope*
(it touches an affected route: 1.0; it is service-wide: 0.5; another service: 0.1).
Confidence is the score's share of all the evidence, so one strong suspect among weak ones is
confident and two equally plausible ones are not.

>>> from stanch.core.events import ChangeEvent, ChangeKind
>>> bad = ChangeEvent("c1", 940.0, "shop", ChangeKind.CONFIG, "timeout 80ms",
...                   routes=("POST /checkout",))
>>> old = ChangeEvent("c2", 100.0, "shop", ChangeKind.DEPLOY, "v1.2")
>>> [s.ref for s in rank_changes([old, bad], onset=1000.0, service="shop",
...                                routes={"POST /checkout"})]
['c1', 'c2']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stanch.core.alerts import Alert, AlertKind
from stanch.core.events import ChangeEvent

REMEDIATION_ACTOR = "stanch"


@dataclass(frozen=True, slots=True)
class Suspect:
    kind: str  # "change" or "dimension"
    ref: str  # change id, or "client=<id>"
    score: float
    confidence: float
    summary: str
    evidence: tuple[str, ...]


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def rank_changes(
    changes: Iterable[ChangeEvent],
    *,
    onset: float,
    service: str,
    routes: set[str],
    lookback_s: float = 6 * 3600.0,
    half_life_s: float = 900.0,
    grace_after_s: float = 60.0,
) -> list[Suspect]:
    scored: list[tuple[float, ChangeEvent, list[str]]] = []
    for change in changes:
        if change.actor == REMEDIATION_ACTOR:
            continue  # Stanch's own rollbacks are remedies, not causes
        delta = onset - change.ts
        if delta > lookback_s or delta < -grace_after_s:
            continue
        evidence: list[str] = []
        if delta >= 0:
            time_score = 0.5 ** (delta / half_life_s)
            evidence.append(f"landed {_ago(delta)} before the onset")
        else:
            time_score = 0.2
            evidence.append(f"landed {_ago(delta)} after the onset (weak: effects follow causes)")
        touched = set(change.routes) & routes
        if change.service != service:
            scope = 0.1
            evidence.append(f"belongs to another service ({change.service})")
        elif touched:
            scope = 1.0
            evidence.append("touches affected route(s) " + ", ".join(sorted(touched)))
        elif not change.routes:
            scope = 0.5
            evidence.append("service-wide change (no route declared)")
        else:
            scope = 0.2
            evidence.append("touches only unaffected routes " + ", ".join(sorted(change.routes)))
        evidence.append(f"{change.kind} by {change.actor or 'unknown'}: {change.summary}")
        scored.append((time_score * scope, change, evidence))
    total = sum(s for s, _, _ in scored)
    ranked = sorted(scored, key=lambda x: (-x[0], -x[1].ts, x[1].id))
    return [
        Suspect("change", c.id, round(s, 6), round(s / (total + 0.25), 4), c.summary, tuple(ev))
        for s, c, ev in ranked
    ]


def rank_dimensions(alerts: Iterable[Alert]) -> list[Suspect]:
    """Clients that explain load anomalies, from the alerts' own evidence."""
    seen: dict[str, list[str]] = {}
    for alert in alerts:
        if alert.kind is not AlertKind.TRAFFIC_SPIKE:
            continue
        for client in alert.clients:
            seen.setdefault(client, []).append(f"{alert.route}: {alert.explanation}")
    suspects = []
    # ``seen`` keeps first-seen order, and each alert lists its clients most responsible first.
    for rank, (client, evidence) in enumerate(seen.items()):
        confidence = 0.9 if len(seen) == 1 else 0.6 / (rank + 1)
        suspects.append(
            Suspect(
                "dimension",
                f"client={client}",
                confidence,
                confidence,
                f"client {client} drives the excess load",
                tuple(evidence),
            )
        )
    return suspects


def rank_suspects(
    changes: Iterable[ChangeEvent],
    alerts: list[Alert],
    *,
    onset: float,
    service: str,
    routes: set[str],
) -> list[Suspect]:
    ranked = rank_changes(changes, onset=onset, service=service, routes=routes)
    ranked += rank_dimensions(alerts)
    return sorted(ranked, key=lambda s: (-s.confidence, s.ref))
