"""Stanch: detect, isolate and mitigate incidents in HTTP API services.

Embedded use, in one process::

    from stanch import Engine, StanchMiddleware, Store, load_runbook

    store = Store.open("sqlite:///stanch.db")
    engine = Engine(store, load_runbook("runbook.yaml"))
    buffer, policy = engine.attach("shop")
    app = StanchMiddleware(app, buffer=buffer, policy=policy)
    # and call engine.step(time.time()) once a second (see README)
"""

from stanch.buffer import EventBuffer, PolicyHolder
from stanch.clock import Clock, SimClock, WallClock
from stanch.core.actions import Action, ActionKind, ActionMode, ActionState
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.config import ConfigKeySpec, ConfigStore, ConfigVersion
from stanch.core.detection_config import DetectionConfig
from stanch.core.errors import (
    IllegalTransition,
    NotFound,
    RunbookError,
    StanchError,
    ValidationError,
)
from stanch.core.events import ChangeEvent, ChangeKind, RequestEvent, UserReport
from stanch.core.incidents import Incident, IncidentState
from stanch.core.policy import Policy
from stanch.core.postmortem import PostMortem, draft_postmortem, render_markdown
from stanch.core.runbook import Runbook, load_runbook, load_runbook_text
from stanch.core.severity import Severity
from stanch.engine import Engine, EngineConfig
from stanch.middleware import StanchMiddleware
from stanch.store import Store

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ActionKind",
    "ActionMode",
    "ActionState",
    "Alert",
    "AlertKind",
    "AlertStatus",
    "ChangeEvent",
    "ChangeKind",
    "Clock",
    "ConfigKeySpec",
    "ConfigStore",
    "ConfigVersion",
    "DetectionConfig",
    "Engine",
    "EngineConfig",
    "EventBuffer",
    "IllegalTransition",
    "Incident",
    "IncidentState",
    "NotFound",
    "Policy",
    "PolicyHolder",
    "PostMortem",
    "RequestEvent",
    "Runbook",
    "RunbookError",
    "Severity",
    "SimClock",
    "StanchError",
    "StanchMiddleware",
    "Store",
    "UserReport",
    "ValidationError",
    "WallClock",
    "draft_postmortem",
    "load_runbook",
    "load_runbook_text",
    "render_markdown",
]
