"""The incident room in a browser: server-rendered pages over the control plane's engine.

``create_app`` mounts it (see :func:`mount_dashboard`); ``stanch serve`` and
``stanch demo --live`` serve it. Pages: overview, incident, knowledge base, runbook,
configuration, audit log. See :mod:`.site` for live updates and headers, :mod:`.sessions`
for sign-in and CSRF, :mod:`.history` for the charts' data.
"""

from stanch.server.dashboard.history import SignalHistory
from stanch.server.dashboard.site import dashboard_for, mount_dashboard
from stanch.server.dashboard.web import Dashboard

__all__ = ["Dashboard", "SignalHistory", "dashboard_for", "mount_dashboard"]
