"""Outgoing webhooks: tell people (Slack, a pager bridge, any JSON endpoint) what Stanch did.

A :class:`Notifier` listens to the engine (``engine.listeners.append(notifier.on_event)``, or
:meth:`Notifier.attach`) and sends a message per :class:`WebhookTarget` on incident opened or
reopened, severity changed, approval needed, mitigation applied and incident resolved.

The package's public surface; each part has its own module:

- :mod:`~stanch.notify.targets`: the targets (who, which payload kind, which events);
- :mod:`~stanch.notify.messages`: what a message says and its JSON or Slack payload;
- :mod:`~stanch.notify.wire`: the HTTP contract with receivers (signature, ``Retry-After``);
- :mod:`~stanch.notify.notifier`: the queues, worker threads and retries, and their counters.
"""

from stanch.notify.messages import (
    Notification,
    render_json,
    render_slack,
    slack_escape,
    summary_line,
)
from stanch.notify.notifier import Failure, Notifier, TargetStatus
from stanch.notify.targets import NOTIFY_EVENTS, WebhookTarget
from stanch.notify.wire import SIGNATURE_HEADER, parse_retry_after, sign, verify_signature

__all__ = [
    "NOTIFY_EVENTS",
    "SIGNATURE_HEADER",
    "Failure",
    "Notification",
    "Notifier",
    "TargetStatus",
    "WebhookTarget",
    "parse_retry_after",
    "render_json",
    "render_slack",
    "sign",
    "slack_escape",
    "summary_line",
    "verify_signature",
]
