"""Read-only pages: the overview, an incident, the knowledge base, and their chart data."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stanch.core.actions import Action
from stanch.core.errors import NotFound
from stanch.core.incidents import Incident
from stanch.core.postmortem import draft_postmortem, render_markdown
from stanch.server.dashboard import knowledge, views
from stanch.server.dashboard.web import View, page

KNOWLEDGE_SCAN = 1000  # incidents the knowledge base searches, newest first


@page()
async def overview(view: View) -> Response:
    ctx = view.ctx
    return view.page(
        "overview.html",
        title="Overview",
        services=views.overview(ctx, view.dash.history),
        incidents=views.open_incidents(ctx),
        pending=views.pending_actions(ctx),
        pending_counts=views.pending_by_incident(ctx),
    )


@page()
async def overview_data(view: View) -> Response:
    """Sparkline data: the same until a 10 s bucket completes, so it is built once per bucket
    however many pages poll it."""
    history = view.dash.history
    cached = view.dash.cache.get("sparklines")
    if cached is None or cached[0] != history.folds:
        body = json.dumps(views.sparklines(history), separators=(",", ":")).encode()
        cached = view.dash.cache["sparklines"] = (history.folds, body)
    return Response(cached[1], media_type="application/json")


def _incident(view: View) -> tuple[Incident, list[Action]]:
    incident_id = view.request.path_params["incident_id"]
    found = views.find_incident(view.ctx, incident_id)
    if found is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return found


@page()
async def incident(view: View) -> Response:
    found, actions = _incident(view)
    ctx = view.ctx
    saved = ctx.store.get_postmortem(found.id)
    if saved is not None:
        markdown, document = saved
        edited_by = str(document.get("edited_by", ""))
    else:
        markdown, edited_by = render_markdown(draft_postmortem(found, actions)), ""
    past = [i for i in ctx.store.list_incidents(limit=200) if not i.is_open]
    return view.page(
        "incident.html",
        title=f"{found.id} {found.title}",
        incident=found,
        actions=actions,
        timeline=list(reversed(found.timeline)),
        alerts=sorted(found.alerts.values(), key=lambda a: a.started_at),
        postmortem=markdown,
        postmortem_saved=saved is not None,
        postmortem_edited_by=edited_by,
        similar=knowledge.similar(found, past),
        ended_at=views.ended_at(found),
    )


@page()
async def incident_data(view: View) -> Response:
    found, actions = _incident(view)
    data = views.incident_charts(found, actions, view.dash.history, view.ctx.now())
    return JSONResponse(data, headers={"cache-control": "no-store"})


@page()
async def knowledge_base(view: View) -> Response:
    params = view.request.query_params
    query = params.get("q", "")[:500]
    labels = {name: params.get(name, "")[:300] for name in knowledge.LABELS}
    incidents = view.ctx.store.list_incidents(limit=KNOWLEDGE_SCAN)
    store = view.ctx.store

    def postmortem(incident: Incident) -> str:
        saved = store.get_postmortem(incident.id)
        return saved[0] if saved else ""

    hits = knowledge.search(incidents, query, labels, postmortem if query else lambda _: "")
    return view.page(
        "knowledge.html",
        title="Knowledge base",
        query=query,
        labels=labels,
        choices=knowledge.label_choices(incidents),
        hits=hits,
        searched=bool(query or any(labels.values())),
    )


ROUTES = [
    Route("/", overview, methods=["GET"]),
    Route("/overview.json", overview_data, methods=["GET"]),
    Route("/incidents/{incident_id}", incident, methods=["GET"]),
    Route("/incidents/{incident_id}/charts.json", incident_data, methods=["GET"]),
    Route("/knowledge", knowledge_base, methods=["GET"]),
]
