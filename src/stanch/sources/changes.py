"""Deploy, config and feature-flag changes from CI/CD, as :class:`ChangeEvent` values.

``POST /api/v1/changes`` takes :class:`ChangeIn`. Without an ``id``, one is derived from the
change's content, so a pipeline that retries a POST records the change once.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from stanch.core.alerts import fingerprint
from stanch.core.events import ChangeEvent, ChangeKind
from stanch.sources._common import MAX_ID, MAX_ROUTE, MAX_TEXT

_Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
_Value = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class ChangeIn(BaseModel):
    """A change made to a service."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    service: _Name
    kind: ChangeKind
    summary: str = Field(min_length=1, max_length=MAX_TEXT)
    id: _Name | None = Field(None, description="Stable id; derived from the content if absent")
    ts: Annotated[float, Strict()] | None = Field(
        None, description="When it happened (epoch seconds); default now"
    )
    key: _Value = ""
    old_value: _Value = ""
    new_value: _Value = ""
    actor: Annotated[str, StringConstraints(max_length=MAX_ID)] = ""
    version: Annotated[str, StringConstraints(max_length=MAX_ID)] = ""
    routes: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ROUTE)]] = Field(
        default_factory=list, max_length=100, description='Route keys touched: "POST /checkout"'
    )
    details: dict[Annotated[str, StringConstraints(max_length=100)], _Value] = Field(
        default_factory=dict, max_length=50
    )


def to_change(body: ChangeIn, now: float) -> ChangeEvent:
    """The change event, timed at ``body.ts`` (never later than ``now``) or ``now``."""
    ts = now if body.ts is None else min(body.ts, now)
    ident = body.id or "chg-" + fingerprint(
        body.service,
        body.kind.value,
        body.summary,
        body.key,
        body.new_value,
        body.version,
        repr(body.ts),
    )
    return ChangeEvent(
        id=ident,
        ts=ts,
        service=body.service,
        kind=body.kind,
        summary=body.summary,
        key=body.key,
        old_value=body.old_value,
        new_value=body.new_value,
        actor=body.actor,
        version=body.version,
        routes=tuple(body.routes),
        details=dict(body.details),
    )
