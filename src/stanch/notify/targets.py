"""Webhook targets: who is told, in which payload kind, about which engine events.

This is the configuration side (``server/settings.py`` builds targets from the server's
settings); it is checked when built, so a bad target fails at start-up, not at first delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from stanch.core.errors import ValidationError

NOTIFY_EVENTS = frozenset(
    {
        "incident_opened",
        "incident_reopened",
        "severity_changed",
        "approval_needed",
        "action_applied",
        "incident_resolved",
    }
)
"""Engine events a target can subscribe to; the default is all of them."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One receiver. ``url`` and ``secret`` are kept out of ``repr`` (and so out of logs)."""

    name: str
    url: str = field(repr=False)
    kind: Literal["json", "slack"] = "json"
    events: frozenset[str] = NOTIFY_EVENTS
    secret: str | None = field(default=None, repr=False)
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValidationError("a webhook target needs a name")
        if not self.url.startswith(("http://", "https://")):
            raise ValidationError(f"webhook {self.name}: url must be http:// or https://")
        if self.kind not in ("json", "slack"):
            raise ValidationError(f"webhook {self.name}: kind must be json or slack")
        unknown = set(self.events) - NOTIFY_EVENTS
        if unknown:
            raise ValidationError(f"webhook {self.name}: unknown events {sorted(unknown)}")
        if self.timeout_s <= 0:
            raise ValidationError(f"webhook {self.name}: timeout_s must be positive")
