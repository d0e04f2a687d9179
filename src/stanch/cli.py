"""The ``stanch`` command line: run the demo, inspect incidents, decide on actions, check runbooks.

Commands that read state open the store named by ``--db`` (or ``STANCH_DB``); decisions made
here are queued in the store and applied by the running engine on its next step, so a
responder can approve from a terminal while the demo or a server runs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stanch.core.errors import RunbookError, StanchError
from stanch.core.incidents import Incident

app = typer.Typer(
    help="Stanch: detect, isolate and mitigate incidents in HTTP APIs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
incidents_app = typer.Typer(help="Look at incidents.", no_args_is_help=True)
actions_app = typer.Typer(
    help="List actions and decide on those waiting for approval.", no_args_is_help=True
)
runbook_app = typer.Typer(help="Validate runbooks.", no_args_is_help=True)
app.add_typer(incidents_app, name="incidents")
app.add_typer(actions_app, name="actions")
app.add_typer(runbook_app, name="runbook")


def _register_subcommands() -> None:
    """Commands owned by other modules, imported lazily enough to keep `stanch --help` fast."""
    from stanch.evaluation.cli import eval_app
    from stanch.server import cli as server_cli

    app.add_typer(eval_app, name="eval", help="Score detectors on public benchmarks (NAB).")
    app.command("serve")(server_cli.serve)
    app.add_typer(server_cli.token_app, name="token")
    app.add_typer(server_cli.audit_app, name="audit")
    from stanch.evaluation.backtest_cli import backtest_command, tune_command

    app.command("backtest")(backtest_command)
    app.command("tune")(tune_command)
    from stanch import noise_cli

    app.add_typer(noise_cli.silences_app, name="silences")
    app.add_typer(noise_cli.maintenance_app, name="maintenance")
    app.command("suppressed")(noise_cli.suppressed)


_register_subcommands()

console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never split a file:line

DEFAULT_DB = "sqlite:///stanch.db"


def _db_url(db: str | None) -> str:
    url = db or os.environ.get("STANCH_DB") or DEFAULT_DB
    if "://" not in url:  # a plain path is a SQLite file
        url = f"sqlite:///{url}"
    return url


def _open_store(db: str | None) -> Any:
    from stanch.store import Store

    url = _db_url(db)
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            err.print(
                f"[red]error:[/] no Stanch database at {escape(str(path))} "
                "(run `stanch demo` first, or pass --db)"
            )
            raise typer.Exit(2)
    return Store.open(url)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _secs(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


DbOption = typer.Option(None, "--db", help="Database URL or SQLite path (env STANCH_DB).")


# ---------------------------------------------------------------------- demo


@app.command()
def demo(
    live: bool = typer.Option(False, "--live", help="Run on the wall clock with uvicorn."),
    out: Path = typer.Option(Path("stanch-out"), "--out", help="Where post-mortems go."),
    seed: int = typer.Option(7, help="Seed of the traffic generator."),
    port: int = typer.Option(8000, help="Port of the live shop (--live only)."),
) -> None:
    """Run the sample shop through two incidents and show what Stanch did."""
    if live:
        from stanch.demo.live import run_live

        asyncio.run(run_live(out_dir=out, port=port, seed=seed, console=console))
        return
    from stanch.demo.report import print_report
    from stanch.demo.scenario import Scenario, fresh_output, run_simulation

    scenario = Scenario(seed=seed)
    db_url = fresh_output(out)
    console.print(
        f"[bold]Stanch demo[/]: {scenario.duration_s / 60:.0f} simulated minutes of the shop "
        f"API, {scenario.base_rps:.0f} req/s on average, on a simulated clock.\n"
    )

    def show(now: float, name: str, details: dict[str, Any]) -> None:
        from stanch.demo.report import describe_event

        line = describe_event(scenario, now, name, details)
        if line:
            console.print(line)

    report = asyncio.run(run_simulation(scenario, db_url=db_url, out_dir=out, on_event=show))
    print_report(report, console, db_url=db_url)


# ---------------------------------------------------------------------- incidents


@incidents_app.command("list")
def incidents_list(
    db: str | None = DbOption,
    state: str | None = typer.Option(None, help="Only incidents in this state."),
    open_only: bool = typer.Option(False, "--open", help="Only open incidents."),
    limit: int = typer.Option(50, min=1, max=10_000),
) -> None:
    """Incidents, newest first."""
    store = _open_store(db)
    try:
        rows = store.list_incidents(state=state, open_only=open_only, limit=limit)
    finally:
        store.close()
    table = Table(title="Incidents")
    table.add_column("id", no_wrap=True, min_width=8)
    for col in ("severity", "state", "title", "opened", "failed", "protected"):
        table.add_column(col)
    for inc in rows:
        table.add_row(
            inc.id,
            inc.severity.value,
            inc.state.value,
            escape(inc.title),
            _when(inc.opened_at),
            str(inc.impact.failed),
            str(inc.impact.protected),
        )
    console.print(table)
    if not rows:
        console.print("No incidents.")


def _show_incident(inc: Incident, actions: list[Any]) -> None:
    console.print(f"[bold]{inc.id}[/] {escape(inc.title)}")
    console.print(f"  severity {inc.severity}  state {inc.state}  service {escape(inc.service)}")
    console.print(
        f"  routes: {escape(', '.join(sorted(inc.routes)) or '—')}   "
        f"clients: {escape(', '.join(sorted(inc.clients)) or '—')}"
    )
    console.print(
        f"  impact: {inc.impact.requests} requests, {inc.impact.failed} failed, "
        f"{inc.impact.protected} answered by protections"
    )
    if inc.suspects:
        console.print("[bold]Suspects[/]")
        for i, s in enumerate(inc.suspects[:5], 1):
            console.print(f"  {i}. {escape(s['summary'])} ({s['confidence']:.0%})")
            for line in s.get("evidence", []):
                console.print(f"       - {escape(line)}")
    if actions:
        table = Table(title="Actions")
        table.add_column("id", no_wrap=True, min_width=8)
        for col in ("kind", "target", "mode", "state", "decided by", "helped"):
            table.add_column(col)
        for a in actions:
            helped = {True: "yes", False: "no", None: "—"}[a.verified]
            table.add_row(
                a.id,
                a.kind.value,
                escape(a.target),
                a.mode.value,
                a.state.value,
                escape(a.decided_by or "—"),
                helped,
            )
        console.print(table)
    table = Table(title="Timeline")
    table.add_column("time (UTC)")
    table.add_column("who")
    table.add_column("what")
    for entry in inc.timeline:
        table.add_row(_when(entry.ts), escape(entry.actor), escape(entry.text))
    console.print(table)


@incidents_app.command("show")
def incidents_show(incident_id: str, db: str | None = DbOption) -> None:
    """One incident: impact, suspects, actions and timeline."""
    store = _open_store(db)
    try:
        inc = store.get_incident(incident_id)
        if inc is None:
            _fail(f"incident {incident_id} does not exist")
        actions = store.list_actions(incident_id=incident_id)
    finally:
        store.close()
    _show_incident(inc, actions)


@app.command()
def postmortem(
    incident_id: str,
    db: str | None = DbOption,
    out: Path | None = typer.Option(None, "--out", help="Write the Markdown to this file."),
) -> None:
    """Print (or write) the post-mortem of an incident, drafting one if none was saved."""
    from stanch.core.postmortem import draft_postmortem, render_markdown

    store = _open_store(db)
    try:
        saved = store.get_postmortem(incident_id)
        if saved is not None:
            markdown = saved[0]
        else:
            inc = store.get_incident(incident_id)
            if inc is None:
                _fail(f"incident {incident_id} does not exist")
            markdown = render_markdown(
                draft_postmortem(inc, store.list_actions(incident_id=incident_id))
            )
    finally:
        store.close()
    if out is not None:
        out.write_text(markdown, encoding="utf-8")
        console.print(f"wrote {escape(str(out))}")
    else:
        sys.stdout.write(markdown)


# ---------------------------------------------------------------------- runbook


@runbook_app.command("check")
def runbook_check(path: Path) -> None:
    """Validate a runbook; every problem is reported as file:line: field: message."""
    from stanch.core.runbook import load_runbook

    try:
        runbook = load_runbook(path)
    except RunbookError as exc:
        for problem in exc.problems:
            err.print(f"[red]{escape(problem)}[/]")
        err.print(f"{len(exc.problems)} problem(s) in {escape(str(path))}")
        raise typer.Exit(1) from None
    actions = sum(len(rule.actions) for rule in runbook.rules)
    console.print(f"{escape(str(path))}: OK, {len(runbook.rules)} rule(s), {actions} action(s)")
    for rule in runbook.rules:
        kinds = ", ".join(sorted(k.value for k in rule.match.kinds)) or "any alert"
        steps = ", ".join(f"{a.kind}({a.mode})" for a in rule.actions) or "no action"
        console.print(f"  {escape(rule.name)}: {escape(kinds)} → {escape(steps)}")


# ---------------------------------------------------------------------- actions


@actions_app.command("list")
def actions_list(
    db: str | None = DbOption,
    state: str | None = typer.Option(None, help="Only actions in this state (e.g. pending)."),
    incident: str | None = typer.Option(None, help="Only actions of this incident."),
) -> None:
    """Actions, with those waiting for approval first."""
    store = _open_store(db)
    try:
        rows = store.list_actions(state=state, incident_id=incident)
    finally:
        store.close()
    rows.sort(key=lambda a: (a.state != "pending", a.id))
    table = Table(title="Actions")
    table.add_column("id", no_wrap=True, min_width=8)
    table.add_column("incident", no_wrap=True, min_width=8)
    for col in ("kind", "target", "mode", "state", "decided by", "created"):
        table.add_column(col)
    for a in rows:
        table.add_row(
            a.id,
            a.incident_id,
            a.kind.value,
            escape(a.target),
            a.mode.value,
            a.state.value,
            escape(a.decided_by or "—"),
            _when(a.created_at),
        )
    console.print(table)


def _decide(action_id: str, decision: str, actor: str, reason: str, db: str | None) -> None:
    store = _open_store(db)
    try:
        store.queue_decision(action_id, decision, actor, reason, time.time())
    except StanchError as exc:
        _fail(str(exc))
    finally:
        store.close()
    console.print(
        f"{decision} of {action_id} by {escape(actor)} queued: the engine applies it "
        "on its next step"
    )


ActorOption = typer.Option(None, "--as", help="Who decides (default: $USER).")


@actions_app.command("approve")
def actions_approve(
    action_id: str,
    db: str | None = DbOption,
    actor: str | None = ActorOption,
    reason: str = typer.Option("", help="Why, for the timeline."),
) -> None:
    """Approve an action waiting for a human."""
    _decide(action_id, "approve", actor or os.environ.get("USER", "cli"), reason, db)


@actions_app.command("reject")
def actions_reject(
    action_id: str,
    db: str | None = DbOption,
    actor: str | None = ActorOption,
    reason: str = typer.Option("", help="Why, for the timeline."),
) -> None:
    """Reject an action waiting for a human."""
    _decide(action_id, "reject", actor or os.environ.get("USER", "cli"), reason, db)


def main() -> None:  # pragma: no cover - console entry point
    app()
