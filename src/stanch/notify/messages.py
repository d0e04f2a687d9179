"""What a message says, and its payload per target kind.

A :class:`Notification` is the copy of an incident's facts taken when the engine emitted the
event; :func:`summary_line` is its one line. Two payload kinds: generic JSON
(:func:`render_json`) and Slack-compatible ``text`` + ``blocks`` (:func:`render_slack`, with
``&``, ``<``, ``>`` escaped as Slack requires). Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stanch.core.incidents import Incident

_SLACK_TEXT_LIMIT = 3000  # Slack rejects a section text longer than this

_HEADLINES = {
    "incident_opened": ":rotating_light:",
    "incident_reopened": ":repeat:",
    "severity_changed": ":arrow_up:",
    "approval_needed": ":raised_hand:",
    "action_applied": ":shield:",
    "incident_resolved": ":white_check_mark:",
}


@dataclass(frozen=True, slots=True)
class Notification:
    """What one message says, copied from the incident when the engine emitted the event."""

    event: str
    incident: str
    title: str
    severity: str
    service: str
    state: str
    ts: float
    text: str
    url: str | None = None
    explanations: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def summary_line(name: str, incident: Incident | None, details: Mapping[str, Any]) -> str:
    """The one-line, unescaped summary of an engine event."""
    inc = str(details.get("incident", incident.id if incident else "?"))
    title = incident.title if incident else str(details.get("title", ""))
    severity = str(details.get("severity") or (incident.severity.value if incident else ""))
    what = f"{details.get('kind', 'action')} on {details.get('target', '?')}"
    action = details.get("action", "?")
    if name == "incident_opened":
        return f"{inc} opened ({severity}): {title}"
    if name == "incident_reopened":
        return f"{inc} reopened ({severity}): {title}"
    if name == "severity_changed":
        return f"{inc} severity raised to {severity}: {title}"
    if name == "approval_needed":
        return f"{inc}: {what} waits for approval (action {action})"
    if name == "action_applied":
        return f"{inc}: {what} applied (action {action})"
    if name == "incident_resolved":
        resolution = incident.resolution if incident else ""
        return f"{inc} resolved: {title}" + (f" ({resolution})" if resolution else "")
    return f"{inc}: {name}"


def render_json(n: Notification) -> dict[str, Any]:
    """The generic payload: fixed keys first, then the engine's details (never overriding)."""
    payload: dict[str, Any] = {
        "event": n.event,
        "incident": n.incident,
        "title": n.title,
        "severity": n.severity,
        "service": n.service,
        "state": n.state,
        "text": n.text,
        "ts": n.ts,
        "explanations": list(n.explanations),
    }
    if n.url:
        payload["url"] = n.url
    for key, value in n.details.items():
        payload.setdefault(key, value)
    return payload


def slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control: ``&``, ``<``, ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int) -> str:
    """Escape ``text`` and cut it to ``limit`` characters without splitting an entity."""
    escaped = slack_escape(text)
    while len(escaped) > limit:
        text = text[: max(0, len(text) - (len(escaped) - limit) - 1)]
        escaped = slack_escape(text) + "…"
    return escaped


def render_slack(n: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook payload: ``text`` (the notification line) and mrkdwn blocks."""
    headline = f"{_HEADLINES.get(n.event, ':information_source:')} *{_fit(n.text, 500)}*"
    body = "\n".join(f"• {_fit(e, 800)}" for e in n.explanations)
    section = headline + (f"\n{body}" if body else "")
    context = [f"*Service:* {_fit(n.service, 200)}", f"*State:* {n.state}"]
    if n.severity:
        context.insert(1, f"*Severity:* {n.severity}")
    if n.url:
        context.append(f"<{slack_escape(n.url)}|Open {slack_escape(n.incident)} in Stanch>")
    return {
        "text": _fit(n.text, _SLACK_TEXT_LIMIT),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section[:_SLACK_TEXT_LIMIT]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
        ],
    }
