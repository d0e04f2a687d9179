"""``stanch silences|maintenance|suppressed`` against the real control plane: the CLI's httpx
client speaks to the app of the server fixtures in-process (and once over a real socket), so
every request passes the server's token check, roles, validation and audit trail."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from typer.testing import CliRunner

from stanch import noise_cli, remote
from stanch.cli import app as cli_app
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.severity import Severity
from stanch.server import ServerContext
from stanch.server.auth import Role

from .helpers import T0, Clock, bearer

runner = CliRunner()
BASE = "http://stanch.test"


class SyncASGI(httpx.BaseTransport):
    """The app behind a synchronous httpx client, in this thread: each request runs to its
    end on a short-lived event loop, as the CLI's one request per command does."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(send())


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection settings from the developer's shell; tables wide enough not to wrap."""
    monkeypatch.delenv("STANCH_URL", raising=False)
    monkeypatch.delenv("STANCH_TOKEN", raising=False)
    monkeypatch.setattr(noise_cli, "console", Console(width=250, highlight=False))


@pytest.fixture
def requests_seen(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Route the CLI to the fixture app; the list records each request's method and path."""
    seen: list[str] = []

    def factory(base_url: str, headers: Mapping[str, str], timeout: float) -> httpx.Client:
        assert base_url == BASE
        hooks = {"request": [lambda r: seen.append(f"{r.method} {r.url.path}")]}
        return httpx.Client(
            base_url=base_url, headers=dict(headers), transport=SyncASGI(app), event_hooks=hooks
        )

    monkeypatch.setattr(remote, "client_factory", factory)
    return seen


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any request fails the test: the input must be refused before one is made."""

    def factory(*_: Any) -> httpx.Client:
        raise AssertionError("a request was made")

    monkeypatch.setattr(remote, "client_factory", factory)


def stanch(*args: str, token: str | None = None, url: str = BASE) -> Any:
    """Run ``stanch ARGS`` with the connection given as the environment, as a shell would."""
    env = {"STANCH_URL": url, **({"STANCH_TOKEN": token} if token else {})}
    return runner.invoke(cli_app, list(args), env=env)


def one_error_line(result: Any) -> str:
    """The error's single line on stderr (and no traceback anywhere)."""
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    return str(lines[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------- silences


def test_add_list_expire_a_silence_through_the_api(
    app: FastAPI,
    ctx: ServerContext,
    clock: Clock,
    tokens: dict[Role, str],
    requests_seen: list[str],
) -> None:
    """add prints only the id; the silence is in the server (via the API and in its audit
    trail, under the token's name); list shows it; expire ends it; list --all shows it
    expired by whoever ended it."""
    responder = tokens[Role.RESPONDER]
    added = stanch(
        "silences", "add", "route=POST /pay", "kind!=traffic_*",
        "--for", "2h", "--comment", "load test on payments", token=responder,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout == "S-0001\n"
    assert "silence S-0001 on 'route=POST /pay' 'kind!=traffic_*': active" in added.stderr
    assert requests_seen == ["POST /api/v1/silences"]

    with httpx.Client(transport=SyncASGI(app), base_url=BASE) as api:
        (seen,) = api.get("/api/v1/silences", headers=bearer(tokens[Role.VIEWER])).json()
    assert seen["matchers"] == [
        {"field": "route", "op": "=", "pattern": "POST /pay"},
        {"field": "kind", "op": "!=", "pattern": "traffic_*"},
    ]
    assert (seen["starts_at"], seen["ends_at"]) == (T0, T0 + 7200)
    (audited,) = [e for e in ctx.store.audit_entries() if e.action == "api.silences.create"]
    assert (audited.actor, audited.target, audited.why) == (
        "responder (responder)",
        "S-0001",
        "load test on payments",
    )

    listed = stanch("silences", "list", token=tokens[Role.VIEWER])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "S-0001" in line)
    assert "'kind!=traffic_*'" in listed.stdout  # a matcher a line, as typed in a shell
    for cell in ("'route=POST /pay'", "active", "responder", "load test"):
        assert cell in row
    assert "2027-01-15 10:00" in row  # ends: T0 + 2 h, in UTC

    clock.t += 60
    expired = stanch("silences", "expire", "S-0001", token=responder)
    assert expired.exit_code == 0, expired.output
    assert "silence S-0001 ended" in expired.stdout
    assert stanch("silences", "list", token=responder).stdout.strip() == "No silences in force."

    history = stanch("silences", "list", "--all", "--json", token=responder)
    (old,) = json.loads(history.stdout)
    assert (old["id"], old["status"], old["ended_by"], old["ended_at"]) == (
        "S-0001",
        "expired",
        "responder",
        T0 + 60,
    )
    table = stanch("silences", "list", "--all", token=responder).stdout
    assert "by responder" in table


def test_a_viewer_token_may_not_add_and_is_told_which_role_may(
    ctx: ServerContext, tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """403 from the server: one line naming the refused request and the roles that may."""
    result = stanch(
        "silences", "add", "service=api", "--for", "1h", "-c", "x", token=tokens[Role.VIEWER]
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "creating a silence was refused" in line
    assert "role viewer may not do this; it needs one of: admin, responder" in line
    assert ctx.engine.noise.listed(T0)[0] == []


@pytest.mark.parametrize(
    ("matchers", "server_says"),
    [
        (["team=payments"], "matcher field 'team' must be one of service, route, kind"),
        (["route=*"], "a silence needs at least one positive matcher"),
        (["route!=GET /health"], "a silence needs at least one positive matcher"),
    ],
)
def test_a_matcher_the_server_refuses_is_shown_in_its_words(
    tokens: dict[Role, str], requests_seen: list[str], matchers: list[str], server_says: str
) -> None:
    """Which fields exist and what mutes too much is the server's to say: its 400, verbatim."""
    result = stanch(
        "silences", "add", *matchers, "--for", "1h", "-c", "x", token=tokens[Role.RESPONDER]
    )
    assert result.exit_code == 1
    assert server_says in one_error_line(result)
    assert requests_seen == ["POST /api/v1/silences"]


def test_fastapi_validation_problems_become_one_line(
    tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """A 422's list of problems is flattened to ``field: message``, on one line."""
    long_glob = "route=/" + "x" * 300
    result = stanch(
        "silences", "add", long_glob, "--for", "1h", "-c", "  ", token=tokens[Role.RESPONDER]
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "matchers.0.pattern: String should have at most 200 characters" in line
    assert "comment: String should have at least 1 character" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--for", "2hours"], "--for '2hours': expected a duration like 30m, 2h, 1d"),
        (["--for", "2"], "--for '2': expected a duration"),
        (["--for", "1m1h"], "--for '1m1h': expected a duration"),
        (["--for", "0m"], "must be longer than zero"),
        (["--until", "tomorrow"], "--until 'tomorrow': expected an ISO-8601 time"),
        (["--for", "1h", "--starts", "noon"], "--starts 'noon': expected an ISO-8601 time"),
        (["--for", "1h", "--until", "2030-01-01"], "give either --for (e.g. 2h) or --until"),
        ([], "give either --for (e.g. 2h) or --until"),
    ],
)
def test_bad_times_are_refused_before_any_request(
    no_requests: None, args: list[str], says: str
) -> None:
    """Exit status 2 and one line naming the option, with no server (and no token) needed."""
    result = stanch("silences", "add", "service=api", "-c", "x", *args)
    assert result.exit_code == 2
    assert says in one_error_line(result)


@pytest.mark.parametrize(
    ("matcher", "says"),
    [
        ("route=~/api/.*", "regular expressions (=~, !~) are not supported"),
        ("route!~/api/.*", "expected field=glob or field!=glob"),
        ("checkout", "expected field=glob or field!=glob"),
        ("=checkout", "expected field=glob or field!=glob"),
    ],
)
def test_matchers_that_are_not_field_op_glob_are_refused_locally(
    no_requests: None, matcher: str, says: str
) -> None:
    """A regex operator or a missing field is a local error (exit 2), not a silent glob."""
    result = stanch("silences", "add", matcher, "--for", "1h", "-c", "x", token="t")
    assert result.exit_code == 2
    assert says in one_error_line(result)


def test_unknown_and_already_expired_ids_say_so(
    tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """404 and 409 carry the server's words; one failing id does not stop the others."""
    responder = tokens[Role.RESPONDER]
    assert stanch("silences", "add", "service=api", "--for", "1h", "-c", "x", token=responder)
    missing = stanch("silences", "expire", "S-9999", token=responder)
    assert missing.exit_code == 1
    assert one_error_line(missing) == "error: no silence S-9999 is in force"
    before = len(requests_seen)
    sneaky = stanch("silences", "expire", "S-0001", "../maintenance/M-0001", token=responder)
    assert sneaky.exit_code == 2
    assert "'../maintenance/M-0001' is not a silence id" in one_error_line(sneaky)
    assert len(requests_seen) == before  # not even the good id: the command is refused whole

    both = stanch("silences", "expire", "S-0001", "S-0001", token=responder)
    assert both.exit_code == 1
    assert "silence S-0001 ended" in both.stdout
    assert "silence S-0001 has ended already" in one_error_line(both)


def test_credentials_missing_or_refused(tokens: dict[Role, str], requests_seen: list[str]) -> None:
    """No token is caught before any request (exit 2); a wrong one is the server's 401 with
    how to get a good one; --url and --token on the command line win over the environment."""
    none = stanch("silences", "list")
    assert none.exit_code == 2
    assert "no API token: set STANCH_TOKEN or pass --token" in one_error_line(none)
    assert requests_seen == []

    wrong = stanch("silences", "list", token="stanch_0000_nope")
    assert wrong.exit_code == 1
    line = one_error_line(wrong)
    assert "the server refused the token (invalid or revoked token)" in line
    assert "stanch token create" in line

    flags = ["--url", f"{BASE}/api/v1/", "--token", tokens[Role.VIEWER]]
    given = stanch("silences", "list", *flags, token="stanch_0000_nope", url="http://elsewhere")
    assert given.exit_code == 0, given.output
    assert given.stdout.strip() == "No silences in force."


def test_an_unreachable_server_is_one_clear_line() -> None:
    """Nothing listening on the port: the URL, the reason, and where to set another."""
    url = f"http://127.0.0.1:{free_port()}"
    result = stanch("silences", "list", token="stanch_a_b", url=url)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"cannot reach the Stanch server at {url}" in line
    assert "STANCH_URL" in line


def test_a_url_that_is_not_http_is_refused(no_requests: None) -> None:
    result = stanch("silences", "list", token="stanch_a_b", url="127.0.0.1:8080")
    assert result.exit_code == 2
    assert "expected http://HOST:PORT" in one_error_line(result)


# ---------------------------------------------------------------------- maintenance


def test_maintenance_one_off_and_weekly_add_list_end(
    ctx: ServerContext, clock: Clock, tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """A one-off window (routes, start later, end at a time) and a weekly one are created in
    the server, listed with their schedule, and ended; --all shows the ended one."""
    responder = tokens[Role.RESPONDER]
    one_off = stanch(
        "maintenance", "add", "shop", "--route", "POST /pay", "--route", "GET /cart*",
        "--starts", str(T0 + 600), "--until", "2027-01-15T11:00:00+01:00",
        "-c", "database migration", token=responder,
    )  # fmt: skip
    assert one_off.exit_code == 0, one_off.output
    assert one_off.stdout == "M-0001\n"
    weekly = stanch(
        "maintenance", "add", "billing", "--weekly", "Mon-Wed,Sat 22:00-02:00",
        "-c", "nightly batch", token=responder,
    )  # fmt: skip
    assert weekly.exit_code == 0, weekly.output

    windows = {w.id: w for w in ctx.engine.noise.listed(clock.t)[1]}
    first, second = windows["M-0001"], windows["M-0002"]
    assert (first.service, first.routes, first.starts_at, first.ends_at) == (
        "shop",
        ("POST /pay", "GET /cart*"),
        T0 + 600,
        T0 + 7200,  # 11:00 at UTC+1 is T0 (08:00 UTC) + 2 h
    )
    assert (second.weekdays, second.start_minute, second.end_minute) == ((0, 1, 2, 5), 1320, 120)

    table = stanch("maintenance", "list", token=tokens[Role.VIEWER]).stdout
    shop = next(line for line in table.splitlines() if "M-0001" in line)
    assert "'POST /pay'" in shop
    assert "'GET /cart*'" in table
    assert "pending" in shop
    assert "2027-01-15 08:10 to 2027-01-15 10:00 UTC" in shop
    assert "Mon, Tue, Wed, Sat 22:00-02:00 UTC" in table

    ended = stanch("maintenance", "end", "M-0002", token=responder)
    assert ended.exit_code == 0, ended.output
    listed = json.loads(stanch("maintenance", "list", "--json", token=responder).stdout)
    assert [w["id"] for w in listed] == ["M-0001"]
    history = json.loads(stanch("maintenance", "list", "--all", "--json", token=responder).stdout)
    assert {(w["id"], w["status"]) for w in history} == {
        ("M-0001", "pending"),
        ("M-0002", "expired"),
    }


def test_maintenance_input_refused_locally_or_by_the_server(
    tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """--weekly excludes one-off times and must parse (exit 2, no request); a window that is
    over already is the server's call (its clock counts), shown in its words."""
    mixed = stanch("maintenance", "add", "shop", "--weekly", "Mon 02:00-04:00", "--for", "1h",
                   "-c", "x", token="t")  # fmt: skip
    assert mixed.exit_code == 2
    assert "--weekly takes its days and hours, not --for" in one_error_line(mixed)
    bad_day = stanch("maintenance", "add", "shop", "--weekly", "Funday 02:00-04:00", "-c", "x")
    assert bad_day.exit_code == 2
    assert "'Funday' is not a weekday" in one_error_line(bad_day)
    assert requests_seen == []

    past = stanch("maintenance", "add", "shop", "--until", "2020-01-01T00:00:00Z", "-c", "x",
                  token=tokens[Role.RESPONDER])  # fmt: skip
    assert past.exit_code == 1
    assert one_error_line(past) == "error: ends_at must be in the future"


# ---------------------------------------------------------------------- suppressed


def firing(route: str, now: float) -> Alert:
    return Alert(
        fingerprint=f"test-{route}",
        kind=AlertKind.ERROR_BURST,
        service="api",
        route=route,
        signal="error_ratio",
        severity=Severity.SEV2,
        status=AlertStatus.FIRING,
        started_at=now,
        updated_at=now,
        observed=0.5,
        expected=0.01,
        score=12.0,
        explanation=f"errors on {route} [bold](test)[/bold]",
        source="test",
    )


def test_suppressed_lists_what_a_silence_held_back_and_why(
    ctx: ServerContext, clock: Clock, tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """An alert a CLI-made silence matches opens no incident and is listed with the silence
    and its comment; --cause filters on the server; a cause that does not exist is exit 2."""
    responder, viewer = tokens[Role.RESPONDER], tokens[Role.VIEWER]
    comment = "load test [red]on pay[/red]"  # markup in people's text is printed as text
    added = stanch("silences", "add", "route=POST /pay", "--for", "1h", "-c", comment,
                   token=responder)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert ctx.engine.ingest_alert(firing("POST /pay", clock.t), clock.t) is None
    assert ctx.engine.incidents == {}

    (held,) = json.loads(stanch("suppressed", "--json", token=viewer).stdout)
    assert (held["route"], held["cause"], held["rule"], held["held"]) == (
        "POST /pay",
        "silence",
        "S-0001",
        True,
    )
    table = stanch("suppressed", token=viewer)
    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if "POST /pay" in line)
    for cell in ("silence", "S-0001", "yes"):
        assert cell in row
    assert "[red]on pay[/red]" in table.stdout

    other = stanch("suppressed", "--cause", "maintenance", token=viewer)
    assert other.stdout.strip() == "Nothing held back."
    assert requests_seen[-1] == "GET /api/v1/suppressed"
    bogus = stanch("suppressed", "--cause", "bogus", token=viewer)
    assert bogus.exit_code == 2
    assert "expected one of silence, maintenance, inhibition" in one_error_line(bogus)


# ---------------------------------------------------------------------- a real socket


class Served:
    """The fixture app under uvicorn on 127.0.0.1, in a thread, for the duration of a test."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start within 10 s"
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    with Served(app) as url:
        yield url


def test_end_to_end_over_a_real_socket(
    live_url: str, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """The default client, over TCP: add, list, expire, as from a terminal."""
    responder = tokens[Role.RESPONDER]
    added = stanch("silences", "add", "service=api", "--for", "30m", "-c", "deploy",
                   token=responder, url=live_url)  # fmt: skip
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.strip()
    (listed,) = json.loads(
        stanch("silences", "list", "--json", token=responder, url=live_url).stdout
    )
    assert (listed["id"], listed["ends_at"] - listed["starts_at"]) == (silence_id, 1800)
    expired = stanch("silences", "expire", silence_id, token=responder, url=live_url)
    assert expired.exit_code == 0, expired.output
    assert [e.target for e in ctx.store.audit_entries() if e.action == "api.silences.expire"] == [
        silence_id
    ]
