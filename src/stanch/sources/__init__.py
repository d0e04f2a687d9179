"""Sources: payloads from other tools and people, normalized into the core's objects.

Each module validates one format and turns it into :class:`~stanch.core.alerts.Alert` or
:class:`~stanch.core.events.ChangeEvent` values, deciding nothing about incidents (that is the
engine's job) and doing no I/O (the server stores what they ask to remember):

- :mod:`.alertmanager`: Alertmanager webhook payloads (version 4; Grafana's too);
- :mod:`.pagerduty`: PagerDuty Events API v2 alert and change events, with its dedup rules;
- :mod:`.reports`: people saying "it fails for me", grouped per service and route;
- :mod:`.changes`: deploy, config and feature-flag changes from CI/CD.

Every parser raises :class:`PayloadError` (a :class:`~stanch.core.errors.ValidationError`)
and nothing else on bad input.
"""

from stanch.sources._common import PayloadError

__all__ = ["PayloadError"]
