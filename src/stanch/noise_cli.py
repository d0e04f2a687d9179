"""``stanch silences``, ``stanch maintenance`` and ``stanch suppressed``: noise control from a
terminal, as ``amtool silence add/query/expire`` is for Alertmanager.

Every command is a client of a running ``stanch serve`` (``--url`` / ``STANCH_URL``, a token
in ``STANCH_TOKEN``), never of its database: a silence must reach the engine that holds the
rules, pass the same checks as one made on the dashboard, need the same role (reading: viewer;
changing: responder or admin) and land in the audit trail under the token's name.

Output: ``add`` prints the new id alone on stdout (``ID=$(stanch silences add ...)``) and a
description on stderr; lists are tables, or the server's JSON with ``--json``. Everything the
server stores from people (matchers, comments, names) is printed as text, never as markup.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stanch.noise_input import parse_duration_arg, parse_time_arg, parse_weekly, split_matcher
from stanch.remote import Remote, RemoteError, TokenOption, UrlOption, connect

console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line

silences_app = typer.Typer(
    help="Mute alerts on a running server for a while (like amtool silence).",
    no_args_is_help=True,
)
maintenance_app = typer.Typer(
    help="Plan maintenance windows on a running server: one-off or weekly.",
    no_args_is_help=True,
)

T = TypeVar("T")

ForOption = typer.Option(None, "--for", help="How long: 30m, 2h, 1d, 1h30m.")
UntilOption = typer.Option(None, "--until", help="End: ISO-8601 (UTC unless offset) or Unix s.")
StartsOption = typer.Option(None, "--starts", help="Start, as --until; default now.")
CommentOption = typer.Option(..., "--comment", "-c", help="Why: shown with every held alert.")
AllOption = typer.Option(False, "--all", "--expired", help="Also the last ones that ended.")
JsonOption = typer.Option(False, "--json", help="The server's JSON, for scripts.")
CAUSES = ("silence", "maintenance", "inhibition")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _checked(parse: Callable[[], T]) -> T:
    """``parse()``, or the one-line error and exit status 2 of input refused locally."""
    try:
        return parse()
    except ValueError as exc:
        _fail(str(exc), 2)


def _remote(url: str, token: str | None) -> Remote:
    try:
        return connect(url, token)
    except RemoteError as exc:
        _fail(str(exc), exc.code)


def _ask(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except RemoteError as exc:
        _fail(str(exc), exc.code)


def _span(for_: str | None, until: str | None, starts: str | None) -> dict[str, float]:
    """``starts_at`` and ``ends_at`` or ``duration`` of the body, from the options given."""
    if (for_ is None) == (until is None):
        _fail("give either --for (e.g. 2h) or --until (a time), one of them", 2)
    span: dict[str, float] = {}
    if starts is not None:
        span["starts_at"] = _checked(lambda: parse_time_arg(starts, "--starts"))
    if for_ is not None:
        span["duration"] = _checked(lambda: parse_duration_arg(for_))
    if until is not None:
        span["ends_at"] = _checked(lambda: parse_time_arg(until, "--until"))
    return span


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _status(rule: dict[str, Any]) -> str:
    if rule.get("ended_by"):
        return f"expired\nby {rule['ended_by']}"
    return str(rule.get("status", "?"))


def _dump(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _matchers(rule: dict[str, Any], sep: str = " ") -> str:
    """Matchers as they would be typed again: ``'route=POST /pay' 'kind!=traffic_*'``."""
    return sep.join(
        shlex.quote(f"{m['field']}{m['op']}{m['pattern']}") for m in rule.get("matchers", [])
    )


# ---------------------------------------------------------------------- silences


@silences_app.command("add")
def silences_add(
    matchers: list[str] = typer.Argument(
        ..., metavar="MATCHER", help="field=glob or field!=glob; all must match."
    ),
    for_: str | None = ForOption,
    until: str | None = UntilOption,
    starts: str | None = StartsOption,
    comment: str = CommentOption,
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Mute alerts matching every MATCHER for a while; prints the new silence's id.

    Fields: service, route, kind, client, source, label:NAME; patterns are globs. Needs a
    responder or admin token.

    Example: stanch silences add route=/checkout 'kind!=traffic_*' --for 2h -c "load test"
    """
    parsed = [_checked(partial(split_matcher, m)) for m in matchers]
    body: dict[str, Any] = {
        "matchers": [{"field": f, "op": op, "pattern": p} for f, op, p in parsed],
        "comment": comment,
        **_span(for_, until, starts),
    }
    remote = _remote(url, token)
    silence = _ask(lambda: remote.post("/silences", body, doing="creating a silence"))
    err.print(
        f"silence {escape(silence['id'])} on {escape(_matchers(silence))}: "
        f"{silence['status']}, {_when(silence['starts_at'])} to {_when(silence['ends_at'])} UTC"
    )
    typer.echo(silence["id"])


@silences_app.command("list")
def silences_list(
    all_: bool = AllOption,
    as_json: bool = JsonOption,
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Silences in force (pending and active); with --all also those that ended."""
    remote = _remote(url, token)
    rows = _ask(lambda: remote.get("/silences", {"expired": all_}, doing="listing silences"))
    if as_json:
        _dump(rows)
        return
    table = Table(title="Silences")
    table.add_column("id", no_wrap=True)
    table.add_column("matchers", overflow="fold")
    table.add_column("starts (UTC)", no_wrap=True)
    table.add_column("ends (UTC)", no_wrap=True)
    table.add_column("status", min_width=7)
    table.add_column("created by", overflow="fold")
    table.add_column("comment", overflow="fold")
    for s in rows:
        table.add_row(
            escape(s["id"]),
            escape(_matchers(s, "\n")),
            _when(s["starts_at"]),
            _when(s.get("ended_at") or s["ends_at"]),
            escape(_status(s)),
            escape(s["created_by"]),
            escape(s["comment"]),
        )
    if rows:
        console.print(table)
    else:
        console.print("No silences." if all_ else "No silences in force.")


@silences_app.command("expire")
def silences_expire(
    silence_ids: list[str] = typer.Argument(..., metavar="ID"),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Expire silences now.

    What they hold back pages at the server's next step if still firing. Needs a responder
    or admin token."""
    _end_each(_remote(url, token), "silences", "silence", silence_ids)


def _end_each(remote: Remote, path: str, noun: str, rule_ids: list[str]) -> None:
    """End each rule; one that cannot be ended is reported and the others still are."""
    for rule_id in rule_ids:
        if not _ID.fullmatch(rule_id):  # one path segment: "../tokens" must reach nothing else
            _fail(
                f"{rule_id[:80]!r} is not a {noun} id (as listed, e.g. {noun[0].upper()}-0001)", 2
            )
    failed = 0
    for rule_id in rule_ids:
        try:
            ended = remote.delete(f"/{path}/{rule_id}", doing=f"ending {noun} {rule_id}")
        except RemoteError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            failed += 1
            continue
        console.print(f"{noun} {escape(ended['id'])} ended at {_when(ended.get('ended_at'))} UTC")
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- maintenance


@maintenance_app.command("add")
def maintenance_add(
    service: str = typer.Argument(..., help="The service under maintenance."),
    routes: list[str] = typer.Option(
        [], "--route", help="A route glob it covers (repeatable); none: the whole service."
    ),
    for_: str | None = ForOption,
    until: str | None = UntilOption,
    starts: str | None = StartsOption,
    weekly: str | None = typer.Option(
        None, "--weekly", help='Every week instead, UTC: "Mon-Fri 02:00-04:00", "Sun 22:00-01:00".'
    ),
    comment: str = CommentOption,
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Plan a maintenance window on SERVICE; prints its id.

    One-off with --for or --until, or every week with --weekly. Needs a responder or admin
    token."""
    body: dict[str, Any] = {"service": service, "routes": routes, "comment": comment}
    if weekly is not None:
        if for_ is not None or until is not None or starts is not None:
            _fail("--weekly takes its days and hours, not --for, --until or --starts", 2)
        days, start, end = _checked(lambda: parse_weekly(weekly))
        body.update(weekdays=days, start_minute=start, end_minute=end)
    else:
        body.update(_span(for_, until, starts))
    remote = _remote(url, token)
    window = _ask(lambda: remote.post("/maintenance", body, doing="creating a maintenance window"))
    err.print(
        f"maintenance window {escape(window['id'])} on {escape(window['service'])}: "
        f"{window['status']}, {escape(_window_when(window))}"
    )
    typer.echo(window["id"])


def _window_when(window: dict[str, Any]) -> str:
    if window.get("weekly"):
        return str(window.get("schedule", ""))
    end = window.get("ended_at") or window.get("ends_at")
    return f"{_when(window.get('starts_at'))} to {_when(end)} UTC"


@maintenance_app.command("list")
def maintenance_list(
    all_: bool = AllOption,
    as_json: bool = JsonOption,
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Maintenance windows in force (pending and active); with --all also those that ended."""
    remote = _remote(url, token)
    rows = _ask(
        lambda: remote.get("/maintenance", {"expired": all_}, doing="listing maintenance windows")
    )
    if as_json:
        _dump(rows)
        return
    table = Table(title="Maintenance windows")
    table.add_column("id", no_wrap=True)
    table.add_column("service", overflow="fold")
    table.add_column("routes", overflow="fold")
    table.add_column("when")
    table.add_column("status", min_width=7)
    table.add_column("created by", overflow="fold")
    table.add_column("comment", overflow="fold")
    for w in rows:
        table.add_row(
            escape(w["id"]),
            escape(w["service"]),
            escape("\n".join(shlex.quote(r) for r in w["routes"]) or "all"),
            escape(_window_when(w)),
            escape(_status(w)),
            escape(w["created_by"]),
            escape(w["comment"]),
        )
    if rows:
        console.print(table)
    else:
        console.print("No maintenance windows." if all_ else "No maintenance windows in force.")


@maintenance_app.command("end")
def maintenance_end(
    window_ids: list[str] = typer.Argument(..., metavar="ID"),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """End maintenance windows now (a weekly one for good). Needs a responder or admin token."""
    _end_each(_remote(url, token), "maintenance", "maintenance window", window_ids)


# ---------------------------------------------------------------------- suppressed


def suppressed(
    service: str | None = typer.Option(None, help="Only alerts of this service."),
    cause: str | None = typer.Option(None, help="silence, maintenance or inhibition."),
    limit: int = typer.Option(100, help="At most this many, newest first (1-1000)."),
    as_json: bool = JsonOption,
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Alerts a running server held back lately, and why.

    Newest first, since the server started (the audit trail keeps them all); "held" says
    the alert is still held back now."""
    if cause is not None and cause not in CAUSES:
        _fail(f"--cause {cause!r}: expected one of {', '.join(CAUSES)}", 2)
    if not 1 <= limit <= 1000:
        _fail(f"--limit {limit}: expected 1 to 1000", 2)
    params: dict[str, Any] = {"limit": limit}
    if service is not None:
        params["service"] = service
    if cause is not None:
        params["cause"] = cause
    remote = _remote(url, token)
    rows = _ask(lambda: remote.get("/suppressed", params, doing="listing held-back alerts"))
    if as_json:
        _dump(rows)
        return
    table = Table(title="Held-back alerts")
    table.add_column("at (UTC)")
    for col in ("service", "route", "kind", "cause", "rule", "held"):
        table.add_column(col, overflow="fold")
    table.add_column("reason", overflow="fold")
    for s in rows:
        table.add_row(
            _when(s["at"]),
            escape(s["service"]),
            escape(s["route"]),
            escape(s["kind"]),
            escape(s["cause"]),
            escape(s["rule"]),
            "yes" if s["held"] else "no",
            escape(s["reason"]),
        )
    if rows:
        console.print(table)
    else:
        console.print("Nothing held back.")
