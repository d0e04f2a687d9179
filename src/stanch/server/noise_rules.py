"""A person's changes to silences and maintenance windows: the engine call and its audit entry.

The API (``/api/v1/silences``, ``/api/v1/maintenance``) and the dashboard's Silences page take
their input differently but must change and record the same thing; ``via`` ("api" or
"dashboard") only names where the change came from in the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from stanch.core.noise import (
    Ended,
    MaintenanceWindow,
    Matcher,
    Silence,
    silence_series_warnings,
    silence_to_dict,
    window_series_warnings,
    window_to_dict,
)
from stanch.server.auth import Principal
from stanch.server.context import ServerContext

Via = Literal["api", "dashboard"]


def create_silence(
    ctx: ServerContext,
    who: Principal,
    matchers: Sequence[Matcher],
    *,
    starts_at: float,
    ends_at: float,
    comment: str,
    via: Via,
) -> Silence:
    silence = ctx.engine.add_silence(
        matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=who.name,
        comment=comment,
        now=ctx.now(),
    )
    ctx.audit.record(
        who.actor, f"{via}.silences.create", silence.id, after=silence_to_dict(silence), why=comment
    )
    return silence


def create_maintenance(
    ctx: ServerContext, who: Principal, window: MaintenanceWindow, *, via: Via
) -> MaintenanceWindow:
    window = ctx.engine.add_maintenance(window, now=ctx.now())
    ctx.audit.record(
        who.actor,
        f"{via}.maintenance.create",
        window.id,
        after=window_to_dict(window),
        why=window.comment,
    )
    return window


def end_rule(
    ctx: ServerContext,
    who: Principal,
    kind: Literal["silences", "maintenance"],
    rule_id: str,
    *,
    via: Via,
) -> Ended:
    """Expire a silence or end a maintenance window now, audited with its status before."""
    now = ctx.now()
    engine = ctx.engine
    if kind == "silences":
        ended = engine.expire_silence(rule_id, now=now, actor=who.name)
    else:
        ended = engine.expire_maintenance(rule_id, now=now, actor=who.name)
    ctx.audit.record(
        who.actor,
        f"{via}.{kind}.expire",
        rule_id,
        before={"status": ended.rule.status(now)},
        after={"status": "expired", "ended_at": now},
    )
    return ended


def series_warnings(ctx: ServerContext, rule: Silence | MaintenanceWindow) -> list[str]:
    """What to tell the person who made ``rule`` if it names no series the engine watches
    (created anyway: the route may not have had traffic yet)."""
    series = [(key.service, key.route) for key in ctx.engine.monitors]
    if isinstance(rule, Silence):
        return silence_series_warnings(rule, series)
    return window_series_warnings(rule, series)
