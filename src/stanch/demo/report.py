"""What the demo shows a person: a running commentary, then one table per incident."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stanch.core.actions import ActionMode
from stanch.core.incidents import IncidentState
from stanch.demo.scenario import DemoReport, Scenario


def _t(scenario: Scenario, now: float) -> str:
    offset = now - scenario.start
    return f"[dim]T+{int(offset // 60):02d}:{int(offset % 60):02d}[/]"


def describe_event(scenario: Scenario, now: float, name: str, details: dict[str, Any]) -> str:
    """One line of commentary for an engine event, or "" for events not worth a line."""
    when = _t(scenario, now)
    incident = escape(str(details.get("incident", "")))
    if name == "change":
        return f"{when} [cyan]change[/]     {escape(str(details['summary']))}"
    if name == "incident_opened":
        return (
            f"{when} [red]incident[/]   {incident} opened at {details['severity']}: "
            f"{escape(str(details['title']))}"
        )
    if name == "severity_changed":
        return f"{when} [red]severity[/]   {incident} is now {details['severity']}"
    if name == "approval_needed":
        return (
            f"{when} [yellow]approval[/]   {incident}: {details['kind']} on "
            f"{escape(str(details['target']))} waits for a human ({details['action']})"
        )
    if name == "action_applied":
        return (
            f"{when} [green]action[/]     {incident}: {details['kind']} on "
            f"{escape(str(details['target']))} applied"
        )
    if name == "action_lifted":
        return f"{when} [green]lifted[/]     {incident}: {details['action']} lifted after recovery"
    if name == "incident_resolved":
        return f"{when} [green]resolved[/]   {incident}: recovery verified"
    if name == "incident_reopened":
        return f"{when} [red]reopened[/]   {incident}"
    return ""


def _secs(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def print_report(report: DemoReport, console: Console, *, db_url: str, live: bool = False) -> None:
    traffic = report.traffic
    if live:
        console.print(
            f"\nSent {traffic.requests:,} requests over HTTP in {report.wall_seconds / 60:.1f} min."
        )
    else:
        console.print(
            f"\nSimulated {report.scenario.duration_s / 60:.0f} min, {traffic.requests:,} "
            f"requests through the real ASGI app in {report.wall_seconds:.1f} s of wall time "
            f"({traffic.requests / max(report.wall_seconds, 1e-9):,.0f} req/s)."
        )
    for incident in report.incidents:
        actions = report.actions.get(incident.id, [])
        table = Table(
            title=f"{incident.id} {escape(incident.title)} — {incident.severity}, {incident.state}",
            title_justify="left",
        )
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("time to detect", _secs(max(0.0, incident.opened_at - incident.onset)))
        table.add_row("time to isolate", _secs(incident.time_to(IncidentState.ISOLATED)))
        table.add_row("time to mitigate", _secs(incident.time_to(IncidentState.MITIGATED)))
        table.add_row("time to resolve", _secs(incident.time_to(IncidentState.RESOLVED)))
        table.add_row("requests failed", f"{incident.impact.failed:,}")
        table.add_row("requests protected (answered by Stanch)", f"{incident.impact.protected:,}")
        table.add_row("requests on affected routes", f"{incident.impact.requests:,}")
        top = incident.suspects[0]["summary"] if incident.suspects else "—"
        table.add_row("top suspect", escape(top))
        for action in actions:
            how = "auto" if action.mode is ActionMode.AUTO else f"approved by {action.decided_by}"
            if action.state == "rejected":
                how = f"rejected by {action.decided_by}"
            table.add_row(
                f"action {action.id}",
                escape(f"{action.kind} {action.target} ({how}) → {action.state}"),
            )
        path = report.postmortems.get(incident.id)
        table.add_row("post-mortem", escape(str(path)) if path else "—")
        console.print(table)
    if not report.incidents:
        console.print("[red]No incident was detected.[/]")
    db_path = db_url.removeprefix("sqlite:///")
    console.print(
        f"\nExplore: [bold]stanch incidents list --db {escape(db_path)}[/], "
        f"[bold]stanch incidents show INC-0001 --db {escape(db_path)}[/], "
        f"[bold]stanch postmortem INC-0001 --db {escape(db_path)}[/]"
    )
