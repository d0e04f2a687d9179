"""``stanch silences``, ``stanch maintenance`` and ``stanch suppressed``: noise control from a
terminal, as ``amtool silence add/query/expire`` is for Alertmanager.

Every command is a client of a running ``stanch serve`` (``--url`` / ``STANCH_URL``, a token
in ``STANCH_TOKEN``), never of its database: a silence must reach the engine that holds the
rules, pass the same checks as one made on the dashboard, need the same role (reading: viewer;
changing: responder or admin) and land in the audit trail under the token's name.

Output: ``add`` prints the new id alone on stdout (``ID=$(stanch silences add ...)``) and a
description on stderr; lists are tables, or the server's JSON with ``--json``. An answer is
read only once it has the shape a Stanch server gives (the ``*View`` models below; anything
else is one line, exit 1). Everything the server stores from people (matchers, comments,
names) is printed as ``rich.text.Text``, never as markup, with control characters made
visible (:func:`stanch.remote.printable`): a comment cannot recolour, clear or retitle the
terminal of whoever lists it. Piped to a file or a program, tables are laid out wide rather
than cut at 80 columns.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, NoReturn, TypeVar

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stanch.noise_input import parse_duration_arg, parse_time_arg, parse_weekly, split_matcher
from stanch.noise_views import (
    A_SILENCE,
    A_WINDOW,
    HELD,
    RULE_ID,
    SILENCES,
    WINDOWS,
    RuleView,
    SilenceView,
    WindowView,
)
from stanch.remote import (
    Answer,
    Remote,
    RemoteError,
    TokenOption,
    UrlOption,
    connect,
    printable,
)

PIPED_WIDTH: Final = 200  # columns of a table written to a file or a pipe: none is cut
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)  # a line stays one
now: Callable[[], float] = time.time  # the clock a computed end is checked against (tests set it)

silences_app = typer.Typer(
    help="Mute alerts on a running server for a while (like amtool silence).",
    no_args_is_help=True,
)
maintenance_app = typer.Typer(
    help="Plan maintenance windows on a running server: one-off or weekly.",
    no_args_is_help=True,
)

T = TypeVar("T")
R = TypeVar("R", bound="RuleView")

ForOption = typer.Option(None, "--for", help="How long: 30m, 2h, 1d, 1h30m.")
UntilOption = typer.Option(None, "--until", help="End: ISO-8601 (UTC unless offset) or Unix s.")
StartsOption = typer.Option(
    None, "--starts", help="Start, as --until; default now (one in the past: now, same end)."
)
CommentOption = typer.Option(..., "--comment", "-c", help="Why: shown with every held alert.")
AllOption = typer.Option(False, "--all", "--expired", help="Also the last ones that ended.")
JsonOption = typer.Option(False, "--json", help="The server's JSON, for scripts.")
CAUSES = ("silence", "maintenance", "inhibition")


# ---------------------------------------------------------------------- output


def _stdout() -> Console:
    """At a terminal, tables fit its width; written to a file or a program (no terminal),
    they are laid out PIPED_WIDTH wide so no cell is cropped at the 80 columns rich assumes
    there (``--json`` is the format for programs; this keeps ``| grep`` and ``> file`` whole)."""
    out = Console(highlight=False, emoji=False)
    if not out.is_terminal:
        out.width = PIPED_WIDTH
    return out


def _text(*lines: str) -> Text:
    """A table cell or a message: ``lines`` (from the server or a person) as plain text on
    lines of their own, control characters visible, never parsed as markup or :emoji:."""
    return Text("\n".join(printable(line) for line in lines))


def _fail(message: str, code: int = 1) -> NoReturn:
    _error(message)
    raise typer.Exit(code)


def _error(message: str) -> None:
    err.print(Text.assemble(("error:", "red"), " ", _text(message)))


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


def _ask(call: Callable[[], Answer[T]]) -> Answer[T]:
    try:
        return call()
    except RemoteError as exc:
        _fail(str(exc), exc.code)


def _span(for_: str | None, until: str | None, starts: str | None) -> dict[str, float]:
    """``starts_at`` and ``ends_at`` or ``duration`` of the body, from the options given.

    With ``--starts`` and ``--for`` the end is sent, not the duration: the server starts a
    rule whose start has passed now, and would end it a whole ``--for`` later, not when the
    person asked. An end that has passed already is refused, as amtool refuses one (by this
    machine's clock; the server checks again by its own)."""
    if (for_ is None) == (until is None):
        _fail("give either --for (e.g. 2h) or --until (a time), one of them", 2)
    span: dict[str, float] = {}
    if starts is not None:
        span["starts_at"] = _checked(lambda: parse_time_arg(starts, "--starts"))
    if until is not None:
        span["ends_at"] = _checked(lambda: parse_time_arg(until, "--until"))
    if for_ is not None:
        seconds = _checked(lambda: parse_duration_arg(for_))
        if starts is None:
            span["duration"] = seconds
        else:
            span["ends_at"] = span["starts_at"] + seconds
            if span["ends_at"] <= now():
                _fail(
                    f"--starts {starts!r} with --for {for_!r} would end at "
                    f"{_when(span['ends_at'])} UTC, which has passed: give a later --starts, "
                    "or none to start now",
                    2,
                )
    return span


def _moved(asked: dict[str, float], starts_at: float | None) -> None:
    """Say so on stderr when the server started the rule later than ``--starts`` (a start
    in the past is now: what is over cannot be silenced); the end is still the one asked."""
    wanted = asked.get("starts_at")
    if wanted is not None and starts_at is not None and starts_at > wanted:
        err.print(
            _text(
                f"note: --starts {_when(wanted)} UTC is past: it starts now, {_when(starts_at)} UTC"
            )
        )


def _warn(rule: RuleView) -> None:
    """The server's warnings about a new rule (e.g. it matches no series seen so far), one
    ``warning: ...`` line each on stderr: the rule was created all the same."""
    for warning in getattr(rule, "warnings", ()):
        err.print(Text.assemble(("warning:", "yellow"), " ", _text(warning)))


def _when(ts: float | None) -> str:
    """A time as the tables show it (UTC); every time in an answer is checked to be one."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _status(rule: RuleView) -> list[str]:
    if rule.ended_by:
        return ["expired", f"by {rule.ended_by}"]
    return [rule.status]


def _dump(answer: Answer[Any]) -> None:
    """The server's JSON as it sent it (extra fields too), ASCII-escaped: a control
    character in it reaches the terminal as ``\\u001b``, not as itself."""
    sys.stdout.write(json.dumps(answer.raw, indent=2) + "\n")


def _matcher_words(silence: SilenceView) -> list[str]:
    """Matchers as they would be typed again: ``'route=POST /pay'``, ``'kind!=traffic_*'``."""
    return [shlex.quote(f"{m.field}{m.op}{m.pattern}") for m in silence.matchers]


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

    Routes include the method: 'route=POST /checkout', 'route=GET /api/*', or
    'route=* /checkout' for any method (a path alone matches nothing and is refused).

    Example: stanch silences add 'route=POST /checkout' 'kind!=traffic_*' --for 2h -c "load test"
    """
    parsed = [_checked(partial(split_matcher, m)) for m in matchers]
    span = _span(for_, until, starts)
    body: dict[str, Any] = {
        "matchers": [{"field": f, "op": op, "pattern": p} for f, op, p in parsed],
        "comment": comment,
        **span,
    }
    remote = _remote(url, token)
    silence = _ask(
        lambda: remote.post("/silences", body, doing="creating a silence", shape=A_SILENCE)
    ).value
    err.print(
        _text(
            f"silence {silence.id} on {' '.join(_matcher_words(silence))}: {silence.status}, "
            f"{_when(silence.starts_at)} to {_when(silence.ends_at)} UTC"
        )
    )
    _moved(span, silence.starts_at)
    _warn(silence)
    typer.echo(silence.id)


@silences_app.command("list")
def silences_list(
    all_: bool = AllOption,
    as_json: bool = JsonOption,
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Silences in force (pending and active); with --all also those that ended."""
    remote = _remote(url, token)
    answer = _ask(
        lambda: remote.get("/silences", {"expired": all_}, doing="listing silences", shape=SILENCES)
    )
    if as_json:
        _dump(answer)
        return
    table = Table(title="Silences")
    table.add_column("id", no_wrap=True)
    table.add_column("matchers", overflow="fold")
    table.add_column("starts (UTC)", no_wrap=True)
    table.add_column("ends (UTC)", no_wrap=True)
    table.add_column("status", min_width=7)
    table.add_column("created by", overflow="fold")
    table.add_column("comment", overflow="fold")
    for s in answer.value:
        table.add_row(
            _text(s.id),
            _text(*_matcher_words(s)),
            _when(s.starts_at),
            _when(s.ended_at or s.ends_at),
            _text(*_status(s)),
            _text(s.created_by),
            _text(s.comment),
        )
    out = _stdout()
    if answer.value:
        out.print(table)
    else:
        out.print("No silences." if all_ else "No silences in force.")


@silences_app.command("expire")
def silences_expire(
    silence_ids: list[str] = typer.Argument(..., metavar="ID"),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Expire silences now.

    What they hold back pages at the server's next step if still firing. Needs a responder
    or admin token."""
    _end_each(_remote(url, token), "silences", "silence", silence_ids, A_SILENCE)


def _end_each(
    remote: Remote,
    path: str,
    noun: str,
    rule_ids: list[str],
    shape: TypeAdapter[R],
) -> None:
    """End each rule; one that cannot be ended is reported and the others still are."""
    for rule_id in rule_ids:
        if not RULE_ID.fullmatch(rule_id):  # one path segment: "../tokens" must reach nothing else
            _fail(
                f"{rule_id[:80]!r} is not a {noun} id (as listed, e.g. {noun[0].upper()}-0001)", 2
            )
    out = _stdout()
    failed = 0
    for rule_id in rule_ids:
        try:
            ended = remote.delete(
                f"/{path}/{rule_id}", doing=f"ending {noun} {rule_id}", shape=shape
            ).value
        except RemoteError as exc:
            _error(str(exc))
            failed += 1
            continue
        out.print(_text(f"{noun} {ended.id} ended at {_when(ended.ended_at)} UTC"))
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- maintenance


@maintenance_app.command("add")
def maintenance_add(
    service: str = typer.Argument(..., help="The service under maintenance."),
    routes: list[str] = typer.Option(
        [],
        "--route",
        help="A route glob it covers, with the method: 'POST /pay*', '* /checkout' "
        "(repeatable); none: the whole service.",
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
    span: dict[str, float] = {}
    if weekly is not None:
        if for_ is not None or until is not None or starts is not None:
            _fail("--weekly takes its days and hours, not --for, --until or --starts", 2)
        days, start, end = _checked(lambda: parse_weekly(weekly))
        body.update(weekdays=days, start_minute=start, end_minute=end)
    else:
        span = _span(for_, until, starts)
        body.update(span)
    remote = _remote(url, token)
    window = _ask(
        lambda: remote.post(
            "/maintenance", body, doing="creating a maintenance window", shape=A_WINDOW
        )
    ).value
    err.print(
        _text(
            f"maintenance window {window.id} on {window.service}: {window.status}, "
            f"{_window_when(window)}"
        )
    )
    _moved(span, window.starts_at)
    _warn(window)
    typer.echo(window.id)


def _window_when(window: WindowView) -> str:
    if window.weekly:
        return window.schedule
    return f"{_when(window.starts_at)} to {_when(window.ended_at or window.ends_at)} UTC"


@maintenance_app.command("list")
def maintenance_list(
    all_: bool = AllOption,
    as_json: bool = JsonOption,
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Maintenance windows in force (pending and active); with --all also those that ended."""
    remote = _remote(url, token)
    answer = _ask(
        lambda: remote.get(
            "/maintenance", {"expired": all_}, doing="listing maintenance windows", shape=WINDOWS
        )
    )
    if as_json:
        _dump(answer)
        return
    table = Table(title="Maintenance windows")
    table.add_column("id", no_wrap=True)
    table.add_column("service", overflow="fold")
    table.add_column("routes", overflow="fold")
    table.add_column("when")
    table.add_column("status", min_width=7)
    table.add_column("created by", overflow="fold")
    table.add_column("comment", overflow="fold")
    for w in answer.value:
        table.add_row(
            _text(w.id),
            _text(w.service),
            _text(*[shlex.quote(r) for r in w.routes] or ["all"]),
            _text(_window_when(w)),
            _text(*_status(w)),
            _text(w.created_by),
            _text(w.comment),
        )
    out = _stdout()
    if answer.value:
        out.print(table)
    else:
        out.print("No maintenance windows." if all_ else "No maintenance windows in force.")


@maintenance_app.command("end")
def maintenance_end(
    window_ids: list[str] = typer.Argument(..., metavar="ID"),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """End maintenance windows now (a weekly one for good). Needs a responder or admin token."""
    _end_each(_remote(url, token), "maintenance", "maintenance window", window_ids, A_WINDOW)


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
    answer = _ask(
        lambda: remote.get("/suppressed", params, doing="listing held-back alerts", shape=HELD)
    )
    if as_json:
        _dump(answer)
        return
    table = Table(title="Held-back alerts")
    table.add_column("at (UTC)")
    for col in ("service", "route", "kind", "cause", "rule", "held"):
        table.add_column(col, overflow="fold")
    table.add_column("reason", overflow="fold")
    for h in answer.value:
        table.add_row(
            _when(h.at),
            _text(h.service),
            _text(h.route),
            _text(h.kind),
            _text(h.cause),
            _text(h.rule),
            "yes" if h.held else "no",
            _text(h.reason),
        )
    out = _stdout()
    if answer.value:
        out.print(table)
    else:
        out.print("Nothing held back.")
