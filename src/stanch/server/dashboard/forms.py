"""What responders do from an incident page: decide on actions, acknowledge, resolve, comment,
and edit the post-mortem.

Each does what the matching ``/api/v1`` endpoint does (the engine call, the audit entry,
waking long-polling agents), with ``dashboard.*`` audit names so the log tells where a
decision was taken.
"""

from __future__ import annotations

from typing import Final

from starlette.routing import Route

from stanch.core.errors import IllegalTransition, NotFound
from stanch.server.auth import Permission
from stanch.server.dashboard.views import find_incident
from stanch.server.dashboard.web import (
    Done,
    Endpoint,
    FormError,
    View,
    field,
    form,
    local_path,
)

REASON_LIMIT: Final = 2000
COMMENT_LIMIT: Final = 10_000
POSTMORTEM_LIMIT: Final = 200_000


def _back(view: View, fields: dict[str, str], default: str) -> str:
    return local_path(fields.get("next", ""), default)


def _decision(verb: str) -> Endpoint:
    @form(Permission.RESPOND)
    async def decide(view: View, fields: dict[str, str]) -> Done:
        ctx = view.ctx
        action_id = view.request.path_params["action_id"]
        reason = field(fields, "reason", limit=REASON_LIMIT)
        current = ctx.engine.actions.get(action_id) or ctx.store.get_action(action_id)
        if current is None:
            raise NotFound(f"action {action_id} does not exist")
        before = current.state.value
        now = ctx.now()
        if verb == "revert":
            action = ctx.engine.revert(action_id, actor=view.who.name, now=now, reason=reason)
        else:
            action = ctx.engine.decide(
                action_id, verb == "approve", actor=view.who.name, now=now, reason=reason
            )
        ctx.audit.record(
            view.who.actor,
            f"dashboard.actions.{verb}",
            action_id,
            before={"state": before},
            after={"state": action.state.value},
            why=reason,
        )
        ctx.changed()
        message = f"{action.id} ({action.kind} on {action.target}) is now {action.state}"
        return Done(message, _back(view, fields, f"/incidents/{action.incident_id}"))

    decide.__name__ = f"{verb}_action"
    return decide


@form(Permission.RESPOND)
async def acknowledge(view: View, fields: dict[str, str]) -> Done:
    ctx = view.ctx
    incident_id = view.request.path_params["incident_id"]
    incident = ctx.engine.acknowledge(incident_id, actor=view.who.name, now=ctx.now())
    ctx.audit.record(
        view.who.actor,
        "dashboard.incidents.acknowledge",
        incident_id,
        after={"state": incident.state.value, "acknowledged_by": incident.acknowledged_by},
    )
    return Done(f"{incident_id} acknowledged", _back(view, fields, f"/incidents/{incident_id}"))


@form(Permission.RESPOND)
async def resolve(view: View, fields: dict[str, str]) -> Done:
    ctx = view.ctx
    incident_id = view.request.path_params["incident_id"]
    resolution = field(fields, "resolution", limit=REASON_LIMIT)
    found = find_incident(ctx, incident_id)
    if found is None:
        raise NotFound(f"incident {incident_id} does not exist")
    before = found[0].state.value
    incident = ctx.engine.resolve(
        incident_id, actor=view.who.name, now=ctx.now(), resolution=resolution
    )
    ctx.audit.record(
        view.who.actor,
        "dashboard.incidents.resolve",
        incident_id,
        before={"state": before},
        after={"state": incident.state.value},
        why=resolution,
    )
    ctx.changed()
    return Done(f"{incident_id} resolved", f"/incidents/{incident_id}")


@form(Permission.RESPOND)
async def comment(view: View, fields: dict[str, str]) -> Done:
    ctx = view.ctx
    incident_id = view.request.path_params["incident_id"]
    text = field(fields, "text", limit=COMMENT_LIMIT, required=True)
    ctx.engine.comment(incident_id, text, actor=view.who.name, now=ctx.now())
    ctx.audit.record(view.who.actor, "dashboard.incidents.comment", incident_id, why=text)
    return Done("comment added", f"/incidents/{incident_id}#timeline")


@form(Permission.RESPOND)
async def edit_postmortem(view: View, fields: dict[str, str]) -> Done:
    """Replace the saved post-mortem's text (it exists once the incident is resolved; before
    that the draft follows the timeline and is not editable)."""
    ctx = view.ctx
    incident_id = view.request.path_params["incident_id"]
    text = field(fields, "markdown", limit=POSTMORTEM_LIMIT, required=True)
    saved = ctx.store.get_postmortem(incident_id)
    if saved is None:
        if find_incident(ctx, incident_id) is None:
            raise NotFound(f"incident {incident_id} does not exist")
        raise IllegalTransition(
            f"{incident_id} is not resolved yet: its post-mortem is a draft that follows the "
            "timeline, and becomes editable once the incident is resolved"
        )
    if len(text.encode("utf-8", "surrogatepass")) > POSTMORTEM_LIMIT:
        raise FormError(400, f"the post-mortem is larger than {POSTMORTEM_LIMIT} bytes")
    now = ctx.now()
    document = {**saved[1], "edited_by": view.who.name, "edited_at": now}
    ctx.store.save_postmortem(incident_id, text, document, now)
    ctx.audit.record(
        view.who.actor,
        "dashboard.postmortem.edit",
        incident_id,
        before={"chars": len(saved[0])},
        after={"chars": len(text)},
    )
    return Done("post-mortem saved", f"/incidents/{incident_id}#postmortem")


ROUTES = [
    *(
        Route(f"/actions/{{action_id}}/{verb}", _decision(verb), methods=["POST"])
        for verb in ("approve", "reject", "revert")
    ),
    Route("/incidents/{incident_id}/acknowledge", acknowledge, methods=["POST"]),
    Route("/incidents/{incident_id}/resolve", resolve, methods=["POST"]),
    Route("/incidents/{incident_id}/comments", comment, methods=["POST"]),
    Route("/incidents/{incident_id}/postmortem", edit_postmortem, methods=["POST"]),
]
