"""Post-mortems drafted from what the incident recorded, so people start from facts, not memory.

The draft is complete enough to publish (summary, impact, timeline, suspects, actions, time to
detect/acknowledge/isolate/mitigate/resolve) and says plainly what it could not know; follow-ups
are proposed from the evidence (a bad config value that passed validation suggests a stricter
rule; a mitigation that did not help suggests revisiting the runbook rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stanch.core.actions import Action, ActionKind
from stanch.core.incidents import Incident, IncidentState, TimelineEntry

STAGES = (
    ("detect", IncidentState.DETECTED),
    ("acknowledge", IncidentState.ACKNOWLEDGED),
    ("isolate", IncidentState.ISOLATED),
    ("mitigate", IncidentState.MITIGATED),
    ("resolve", IncidentState.RESOLVED),
)


@dataclass(frozen=True, slots=True)
class PostMortem:
    incident_id: str
    title: str
    service: str
    severity: str
    state: str
    summary: str
    root_cause: str
    onset: float
    durations: dict[str, float | None]
    impact: dict[str, Any]
    timeline: tuple[TimelineEntry, ...]
    suspects: tuple[dict[str, Any], ...]
    actions: tuple[dict[str, Any], ...]
    follow_ups: tuple[str, ...]
    routes: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "title": self.title,
            "service": self.service,
            "severity": self.severity,
            "state": self.state,
            "summary": self.summary,
            "root_cause": self.root_cause,
            "onset": self.onset,
            "durations": self.durations,
            "impact": self.impact,
            "suspects": list(self.suspects),
            "actions": list(self.actions),
            "follow_ups": list(self.follow_ups),
            "routes": list(self.routes),
            "clients": list(self.clients),
        }


def durations(incident: Incident) -> dict[str, float | None]:
    """Seconds from onset to each stage; detection is measured to the incident's opening."""
    result: dict[str, float | None] = {}
    for name, state in STAGES:
        if state is IncidentState.DETECTED:
            result[name] = max(0.0, incident.opened_at - incident.onset)
        else:
            result[name] = incident.time_to(state)
    return result


def _follow_ups(incident: Incident, actions: list[Action]) -> list[str]:
    ups: list[str] = []
    top = incident.suspects[0] if incident.suspects else None
    if top and top.get("kind") == "change" and top.get("confidence", 0) >= 0.3:
        ups.append(
            f"Tighten validation so that the change '{top['summary']}' would have been refused "
            "(range or canary check on the keys it touched)."
        )
        ups.append(
            "Add a deployment check that watches the affected routes for 5 minutes "
            "after every config change and rolls back automatically."
        )
    if top and top.get("kind") == "dimension":
        ups.append(
            f"Agree a standing rate limit with {top['ref'].split('=', 1)[-1]} and "
            "document its usage pattern."
        )
    for action in actions:
        if action.verified is False:
            ups.append(
                f"Runbook rule '{action.rule}': {action.kind} on {action.target} did not "
                "help within its window; revise the rule."
            )
    detect = durations(incident)["detect"]
    if detect is not None and detect > 60:
        ups.append(
            f"Detection took {detect:.0f}s: backtest and tune the thresholds for "
            + ", ".join(sorted(incident.routes) or ["the service"])
            + "."
        )
    if not ups:
        ups.append("Record the root cause and fix in the knowledge base.")
    return ups


def draft_postmortem(incident: Incident, actions: list[Action]) -> PostMortem:
    top = incident.suspects[0] if incident.suspects else None
    root = (
        f"{top['summary']} (confidence {top['confidence']:.0%})"
        if top
        else "No suspect found: no recorded change or dimension explains the anomaly."
    )
    impact = incident.impact
    kinds = sorted({a.kind.value for a in incident.alerts.values()})
    where = ", ".join(sorted(incident.routes)) or f"service {incident.service}"
    applied = [a for a in actions if a.applied_at is not None]
    summary = (
        f"{incident.severity} incident on {where}: {', '.join(kinds)}. "
        f"{impact.failed} requests failed and {impact.protected} were answered by Stanch's "
        f"protections out of {impact.requests}. "
        f"{len(applied)} action(s) applied. Final state: {incident.state}."
    )
    rollbacks = [a for a in actions if a.kind is ActionKind.ROLLBACK_CONFIG and a.applied_at]
    if rollbacks:
        summary += f" Fixed by rolling back {', '.join(a.target for a in rollbacks)}."
    return PostMortem(
        incident_id=incident.id,
        title=incident.title,
        service=incident.service,
        severity=incident.severity.value,
        state=incident.state.value,
        summary=summary,
        root_cause=root,
        onset=incident.onset,
        durations=durations(incident),
        impact={
            "requests": impact.requests,
            "failed": impact.failed,
            "protected": impact.protected,
            "users_affected_share": round(impact.users_affected_share, 4),
            "users_seen": len(impact.clients_seen),
        },
        timeline=tuple(incident.timeline),
        suspects=tuple(incident.suspects),
        actions=tuple(
            {
                "id": a.id,
                "kind": a.kind.value,
                "target": a.target,
                "mode": a.mode.value,
                "state": a.state.value,
                "rule": a.rule,
                "decided_by": a.decided_by,
                "applied_at": a.applied_at,
                "ended_at": a.ended_at,
                "verified": a.verified,
            }
            for a in actions
        ),
        follow_ups=tuple(_follow_ups(incident, actions)),
        routes=tuple(sorted(incident.routes)),
        clients=tuple(sorted(incident.clients)),
    )


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.0f} s"
    return f"{value / 60:.1f} min"


def _md(text: str) -> str:
    """Escape what Markdown would otherwise interpret in user-controlled strings."""
    out = " ".join(text.replace("\\", "\\\\").splitlines())  # one table cell, one line
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    if out[:1] in ("-", "+"):
        out = "\\" + out
    return out


def render_markdown(pm: PostMortem, *, clock_origin: float | None = None) -> str:
    """Markdown for humans; timestamps relative to the onset keep the story readable."""
    origin = pm.onset if clock_origin is None else clock_origin

    def rel(ts: float) -> str:
        delta = ts - origin
        sign = "+" if delta >= 0 else "−"
        delta = abs(delta)
        return f"T{sign}{int(delta // 60):02d}:{int(delta % 60):02d}"

    lines = [
        f"# Post-mortem {pm.incident_id}: {_md(pm.title)}",
        "",
        f"- **Service:** {_md(pm.service)}",
        f"- **Severity:** {pm.severity}",
        f"- **State:** {pm.state}",
        f"- **Affected routes:** {_md(', '.join(pm.routes) or '—')}",
        f"- **Implicated clients:** {_md(', '.join(pm.clients) or '—')}",
        "",
        "## Summary",
        "",
        _md(pm.summary),
        "",
        "## Root cause",
        "",
        _md(pm.root_cause),
        "",
        "## Impact",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| requests on affected components | {pm.impact['requests']} |",
        f"| requests failed | {pm.impact['failed']} |",
        f"| requests answered by protections (shed, throttled, breaker) | "
        f"{pm.impact['protected']} |",
        f"| share of users who saw a failure | {pm.impact['users_affected_share']:.1%} |",
        "",
        "## Time to …",
        "",
        "| stage | from onset |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {_fmt_seconds(pm.durations.get(name))} |" for name, _ in STAGES]
    lines += ["", "## Suspects", ""]
    if pm.suspects:
        lines += ["| # | suspect | confidence | evidence |", "|---:|---|---:|---|"]
        for i, s in enumerate(pm.suspects, 1):
            evidence = "; ".join(s.get("evidence", ()))
            lines.append(f"| {i} | {_md(s['summary'])} | {s['confidence']:.0%} | {_md(evidence)} |")
    else:
        lines.append("None found.")
    lines += ["", "## Actions", ""]
    if pm.actions:
        lines += [
            "| action | target | mode | decided by | final state | helped |",
            "|---|---|---|---|---|---|",
        ]
        for a in pm.actions:
            helped = {True: "yes", False: "no", None: "—"}[a["verified"]]
            lines.append(
                f"| {a['kind']} | {_md(a['target'])} | {a['mode']} | "
                f"{_md(a['decided_by'] or '—')} | {a['state']} | {helped} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## Timeline", "", "| time | who | what |", "|---|---|---|"]
    for entry in pm.timeline:
        lines.append(f"| {rel(entry.ts)} | {_md(entry.actor)} | {_md(entry.text)} |")
    lines += ["", "## Follow-ups", ""]
    lines += [f"- [ ] {_md(item)}" for item in pm.follow_ups]
    return "\n".join(lines) + "\n"
