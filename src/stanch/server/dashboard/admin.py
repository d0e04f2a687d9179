"""The runbook, the configuration store and the audit log.

Anyone signed in reads the runbook and the configuration; admins replace the runbook (checked
first, every problem shown at its line), roll configuration back, and read the audit log with
the hash chain's verification status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from starlette.responses import Response
from starlette.routing import Route

from stanch.core.audit import AuditEntry, verify
from stanch.core.config import ConfigStore, ConfigVersion
from stanch.core.errors import NotFound, RunbookError
from stanch.core.runbook import MAX_RUNBOOK_BYTES, Runbook, load_runbook_text
from stanch.server.auth import Permission
from stanch.server.context import RUNBOOK_META
from stanch.server.dashboard.web import Done, FormError, View, field, form, page

RUNBOOK_SOURCE: Final = "dashboard"
AUDIT_PAGE: Final = 100
_PROBLEM = re.compile(r"^(?P<file>.*?):(?P<line>\d+): (?P<message>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None
    message: str


def problems_at_lines(problems: list[str]) -> list[Problem]:
    """``file:line: field: message`` lines as (line, ``field: message``)."""
    out = []
    for text in problems:
        match = _PROBLEM.match(text)
        if match:
            out.append(Problem(int(match["line"]), match["message"]))
        else:
            out.append(Problem(None, text))
    return out


def _runbook_page(
    view: View,
    *,
    text: str | None = None,
    problems: list[Problem] | None = None,
    checked: Runbook | None = None,
    status: int = 200,
) -> Response:
    stored = view.ctx.store.get_meta(RUNBOOK_META) or {}
    current_text = str(stored.get("text", ""))
    runbook = view.ctx.engine.runbook
    try:
        load_runbook_text(current_text or "version: 1\nrules: []\n", runbook.source)
        current_problems: list[Problem] = []
    except RunbookError as exc:
        current_problems = problems_at_lines(exc.problems)
    shown = current_text if text is None else text
    by_line: dict[int, list[str]] = {}
    for problem in problems or []:
        if problem.line is not None:
            by_line.setdefault(problem.line, []).append(problem.message)
    return view.page(
        "runbook.html",
        status=status,
        title="Runbook",
        runbook=runbook,
        stored=stored,
        current_problems=current_problems,
        lines=shown.split("\n"),
        text=shown,
        problems=problems or [],
        by_line=by_line,
        checked=checked,
        max_bytes=MAX_RUNBOOK_BYTES,
    )


@page()
async def runbook(view: View) -> Response:
    return _runbook_page(view)


@form(Permission.ADMIN)
async def replace_runbook(view: View, fields: dict[str, str]) -> Response | Done:
    text = field(fields, "text", limit=MAX_RUNBOOK_BYTES, required=True)
    try:
        candidate = load_runbook_text(text, RUNBOOK_SOURCE)
    except RunbookError as exc:
        return _runbook_page(view, text=text, problems=problems_at_lines(exc.problems), status=400)
    if fields.get("op") == "check":
        return _runbook_page(view, text=text, checked=candidate)
    view.ctx.save_runbook(candidate, text, source=RUNBOOK_SOURCE, actor=view.who.actor)
    return Done(f"runbook replaced: {len(candidate.rules)} rule(s) in force", "/runbook")


@page()
async def config_index(view: View) -> Response:
    services = view.ctx.store.config_services()
    current = {s: view.ctx.store.config_history(s)[-1] for s in services}
    return view.page("config.html", title="Configuration", services=services, current=current)


def _history(view: View, service: str) -> list[ConfigVersion]:
    history = view.ctx.store.config_history(service)
    if not history:
        raise NotFound(f"no configuration stored for service {service!r}")
    return history


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


@page()
async def config_service(view: View) -> Response:
    service = view.request.path_params["service"]
    history = _history(view, service)
    by_number = {v.version: v for v in history}
    params = view.request.query_params
    latest = history[-1].version
    to_version = _int(params.get("to"), latest)
    from_version = _int(params.get("from"), max(1, to_version - 1))
    diff: dict[str, tuple[Any, Any]] | None = None
    if from_version in by_number and to_version in by_number:
        diff = ConfigStore.diff(by_number[from_version], by_number[to_version])
    return view.page(
        "config_service.html",
        title=f"Configuration of {service}",
        service=service,
        versions=list(reversed(history)),
        current=history[-1],
        from_version=from_version,
        to_version=to_version,
        diff=diff,
        rollback_possible=service in view.ctx.engine.config_stores,
    )


@form(Permission.ADMIN)
async def rollback(view: View, fields: dict[str, str]) -> Done:
    ctx = view.ctx
    service = view.request.path_params["service"]
    reason = field(fields, "reason", limit=2000)
    try:
        to_version = int(fields.get("to_version", ""))
    except ValueError:
        raise FormError(400, "to_version must be a version number") from None
    before = _history(view, service)[-1].version
    ctx.engine.rollback_config(service, ctx.now(), to_version, author=view.who.name, reason=reason)
    after = ctx.engine.config_stores[service].current
    ctx.audit.record(
        view.who.actor,
        "dashboard.config.rollback",
        service,
        before={"version": before},
        after={"version": after.version, "values_of": to_version},
        why=reason,
    )
    return Done(
        f"{service}: version {after.version} now holds the values of version {to_version}",
        f"/config/{service}",
    )


def _audit_filter(entry: AuditEntry, filters: dict[str, str]) -> bool:
    if filters["actor"] and filters["actor"].lower() not in entry.actor.lower():
        return False
    if filters["action"] and not entry.action.startswith(filters["action"]):
        return False
    if filters["target"] and filters["target"] != entry.target:
        return False
    return not (filters["q"] and filters["q"].lower() not in entry.why.lower())


@page(Permission.ADMIN)
async def audit(view: View) -> Response:
    params = view.request.query_params
    filters = {
        name: params.get(name, "")[:200].strip() for name in ("actor", "action", "target", "q")
    }
    before = _int(params.get("before"), 0)
    entries = view.ctx.store.audit_entries()
    problems = verify(entries)
    matching = [
        e for e in reversed(entries) if (not before or e.seq < before) and _audit_filter(e, filters)
    ]
    shown = matching[:AUDIT_PAGE]
    older = shown[-1].seq if len(matching) > AUDIT_PAGE else None
    actions = sorted({e.action.split(".")[0] for e in entries})
    return view.page(
        "audit.html",
        title="Audit log",
        entries=shown,
        total=len(entries),
        matching=len(matching),
        problems=problems,
        head=entries[-1] if entries else None,
        filters=filters,
        action_prefixes=actions,
        older=older,
    )


ROUTES = [
    Route("/runbook", runbook, methods=["GET"]),
    Route("/runbook", replace_runbook, methods=["POST"]),
    Route("/config", config_index, methods=["GET"]),
    Route("/config/{service}", config_service, methods=["GET"]),
    Route("/config/{service}/rollback", rollback, methods=["POST"]),
    Route("/audit", audit, methods=["GET"]),
]
