"""CLI commands of the control plane, for ``stanch.cli`` to register::

    app.command("serve")(serve)
    app.add_typer(token_app, name="token")
    app.add_typer(audit_app, name="audit")

``stanch serve`` runs the API (uvicorn) around one engine; ``stanch token create|list|revoke``
manages API tokens; ``stanch audit verify`` checks the audit log's hash chain (and anchors
recorded with ``stanch audit head``) and exits 1 naming each problem. Options fall back to
``STANCH_*`` environment variables.
"""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stanch.core.audit import Anchor, verify
from stanch.core.errors import StanchError

console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never split a file:line

token_app = typer.Typer(help="Manage API tokens (only a hash is stored).", no_args_is_help=True)
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)

DbOption = typer.Option(None, "--db", help="Database URL or SQLite path (env STANCH_DB).")


def _url(db: str | None) -> str:
    url = db or os.environ.get("STANCH_DB") or "sqlite:///stanch.db"
    return url if "://" in url else f"sqlite:///{url}"


def _cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user} (cli)"


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (env STANCH_HOST)."),
    port: int | None = typer.Option(None, help="Port (env STANCH_PORT)."),
    db: str | None = DbOption,
    runbook: Path | None = typer.Option(None, help="Runbook YAML (env STANCH_RUNBOOK)."),
    detection: Path | None = typer.Option(
        None,
        help="Detector settings YAML, e.g. as `stanch tune` proposes (env STANCH_DETECTION).",
    ),
    interval: float | None = typer.Option(
        None, help="Seconds between engine steps (env STANCH_INTERVAL)."
    ),
) -> None:
    """Run the control plane: the HTTP API around one engine."""
    import uvicorn

    from stanch.server.app import create_app
    from stanch.server.context import ServerContext
    from stanch.server.settings import Settings

    try:
        settings = Settings.from_env(
            host=host,
            port=port,
            db=db,
            runbook=runbook,
            detection=detection,
            interval_s=interval,
        )
        ctx = ServerContext.open(settings)
    except StanchError as exc:
        _fail(str(exc), 2)
        return
    app = create_app(ctx, close_on_shutdown=True)
    console.print(
        f"Stanch control plane on http://{settings.host}:{settings.port}/ (dashboard), "
        f"API under /api/v1 (docs: /api/v1/docs), database {escape(settings.db.split('@')[-1])}"
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., help="viewer, responder, admin or agent."),
    name: str = typer.Option(..., help="Who or what holds it (unique); shown in the audit log."),
    db: str | None = DbOption,
) -> None:
    """Create a token and print its secret (once: only a hash is stored)."""
    from stanch.server.audit import AuditTrail
    from stanch.server.auth import issue_token
    from stanch.store import Store

    with Store.open(_url(db)) as store:
        try:
            stored, secret = issue_token(
                store, name, role, created_by=_cli_actor(), now=time.time()
            )
        except StanchError as exc:
            _fail(str(exc))
            return
        AuditTrail(store, time.time).record(
            _cli_actor(),
            "token.create",
            stored.id,
            after={"name": stored.name, "role": stored.role},
        )
    err.print(f"token {stored.id} for {escape(stored.name)} ({stored.role}); keep it secret:")
    print(secret)


@token_app.command("list")
def token_list(db: str | None = DbOption) -> None:
    """Tokens (never their secrets), revoked ones marked."""
    from stanch.store import Store

    with Store.open(_url(db)) as store:
        tokens = store.list_tokens()
    table = Table(title="API tokens")
    for col in ("id", "name", "role", "created by", "revoked"):
        table.add_column(col)
    for t in tokens:
        table.add_row(
            t.id, escape(t.name), t.role, escape(t.created_by), "yes" if t.revoked_at else ""
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: str, db: str | None = DbOption) -> None:
    """Revoke a token (a running server stops accepting it within seconds)."""
    from stanch.server.audit import AuditTrail
    from stanch.store import Store

    with Store.open(_url(db)) as store:
        try:
            stored = store.revoke_token(token_id, time.time())
        except StanchError as exc:
            _fail(str(exc))
            return
        AuditTrail(store, time.time).record(
            _cli_actor(),
            "token.revoke",
            token_id,
            before={"revoked": False},
            after={"revoked": True, "name": stored.name},
        )
    console.print(f"token {token_id} ({escape(stored.name)}) revoked")


@audit_app.command("verify")
def audit_verify(
    db: str | None = DbOption,
    anchor: list[str] = typer.Option(
        [], "--anchor", help="A head recorded earlier, SEQ:HASH (repeatable)."
    ),
    anchors: Path | None = typer.Option(
        None,
        "--anchors",
        help="A file of heads recorded earlier, one SEQ:HASH per line (# comments).",
    ),
) -> None:
    """Check the hash chain: exit 0 if intact, 1 naming every edited, inserted or deleted entry.

    With anchors (heads from `stanch audit head`, kept outside the database) it also names
    entries cut from the end of the chain and stretches rewritten with recomputed hashes.
    """
    from stanch.store import Store

    known: list[Anchor] = []
    for text in anchor:
        try:
            known.append(Anchor.parse(text))
        except ValueError as exc:
            _fail(f"--anchor: {exc}", 2)
    if anchors is not None:
        known.extend(_read_anchors(anchors))
    with Store.open(_url(db)) as store:
        entries = store.audit_entries()
    problems = verify(entries, known)
    if problems:
        for problem in problems:
            err.print(f"[red]{escape(str(problem))}[/]")
        err.print(f"{len(entries)} entries, {len(problems)} problem(s): the chain is broken")
        raise typer.Exit(1)
    head = f"; head {entries[-1].seq}:{entries[-1].hash}" if entries else ""
    checked = f", {len(set(known))} anchor(s) match" if known else ""
    console.print(f"{len(entries)} entries, chain intact{checked}{head}")


@audit_app.command("head")
def audit_head(db: str | None = DbOption) -> None:
    """Print the chain's head as SEQ:HASH, to record where the database's writers cannot reach.

    For example from cron: `stanch audit head >> /mnt/worm/stanch-anchors`; later
    `stanch audit verify --anchors /mnt/worm/stanch-anchors` finds entries cut from the end.
    """
    from stanch.store import Store

    with Store.open(_url(db)) as store:
        head = store.audit_head()
    if head is None:
        _fail("the audit log is empty: nothing to anchor yet")
        return
    typer.echo(str(Anchor(head.seq, head.hash)))  # plain: a terminal's width must not wrap it


def _read_anchors(path: Path) -> list[Anchor]:
    """Anchors from a file, one per line; an unreadable file or a bad line is an error naming
    the file and the line."""

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{path}: cannot read anchors: {exc}", 2)
        return []
    found: list[Anchor] = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            found.append(Anchor.parse(text))
        except ValueError as exc:
            _fail(f"{path}:{number}: {exc}", 2)
    return found
