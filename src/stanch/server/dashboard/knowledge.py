"""The knowledge base: past incidents found by text and by labels, and similar ones.

Labels are what every incident carries: service, route, severity, state, alert kind and the
clients it implicated. Text matches when every word of the query occurs (case-insensitive)
somewhere in the incident: title, alerts' explanations, timeline (comments included),
suspects and their evidence, resolution, and the post-mortem. Hits rank by how often the
words occur, then by recency.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from stanch.core.incidents import Incident

LABELS = ("service", "route", "severity", "state", "kind", "client")
_WORD = re.compile(r"\w[\w./{}:-]*", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Hit:
    incident: Incident
    score: int
    snippet: str


def labels_of(incident: Incident) -> dict[str, set[str]]:
    return {
        "service": {incident.service},
        "route": set(incident.routes),
        "severity": {incident.severity.value},
        "state": {incident.state.value},
        "kind": {a.kind.value for a in incident.alerts.values()},
        "client": set(incident.clients),
    }


def label_choices(incidents: Iterable[Incident]) -> dict[str, list[str]]:
    """Every value each label takes among ``incidents``, sorted: the filter's options."""
    found: dict[str, set[str]] = {name: set() for name in LABELS}
    for incident in incidents:
        for name, values in labels_of(incident).items():
            found[name].update(values)
    return {name: sorted(values)[:200] for name, values in found.items()}


def texts_of(incident: Incident, postmortem: str = "") -> list[str]:
    texts = [incident.title, incident.resolution, postmortem]
    texts += [a.explanation for a in incident.alerts.values()]
    texts += [entry.text for entry in incident.timeline]
    for suspect in incident.suspects:
        texts.append(str(suspect.get("summary", "")))
        texts += [str(e) for e in suspect.get("evidence", ())]
    return [t for t in texts if t]


def words(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)][:20]


def search(
    incidents: Iterable[Incident],
    query: str,
    labels: Mapping[str, str],
    postmortem: Callable[[Incident], str] = lambda _: "",
    limit: int = 50,
) -> list[Hit]:
    """Incidents whose labels equal every given label and whose text has every query word."""
    wanted = {k: v for k, v in labels.items() if k in LABELS and v}
    terms = words(query)
    hits = []
    for incident in incidents:
        have = labels_of(incident)
        if any(value not in have[name] for name, value in wanted.items()):
            continue
        if not terms:
            hits.append(Hit(incident, 0, ""))
            continue
        texts = texts_of(incident, postmortem(incident))
        haystack = "\n".join(texts).lower()
        if not all(term in haystack for term in terms):
            continue
        score = sum(haystack.count(term) for term in terms)
        snippet = next((t for t in texts if any(term in t.lower() for term in terms)), "")
        hits.append(Hit(incident, score, _clip(snippet)))
    hits.sort(key=lambda h: (-h.score, -h.incident.opened_at))
    return hits[:limit]


def similar(incident: Incident, candidates: Iterable[Incident], limit: int = 3) -> list[Incident]:
    """Earlier incidents like this one: same service, overlapping routes or alert kinds."""
    mine = labels_of(incident)
    scored = []
    for other in candidates:
        if other.id == incident.id or other.service != incident.service:
            continue
        theirs = labels_of(other)
        overlap = 2 * len(mine["route"] & theirs["route"]) + len(mine["kind"] & theirs["kind"])
        if overlap:
            scored.append((overlap, other.opened_at, other))
    scored.sort(key=lambda s: (-s[0], -s[1]))
    return [other for _, _, other in scored[:limit]]


def _clip(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
