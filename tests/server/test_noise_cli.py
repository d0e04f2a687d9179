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
    """No connection settings from the developer's shell (tables are as wide as the CLI makes
    them when stdout is not a terminal, as under CliRunner: nothing here widens them)."""
    monkeypatch.delenv("STANCH_URL", raising=False)
    monkeypatch.delenv("STANCH_TOKEN", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)


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
        (["route=/checkout"], "route names include the method, e.g. 'POST /checkout'"),
        (["service=api", "kind=error_burts"], "the kinds are: traffic_spike, traffic_drop"),
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


# ---------------------------------------------------------------------- a server that is not Stanch

SILENCE = {
    "id": "S-0001",
    "matchers": [{"field": "service", "op": "=", "pattern": "api"}],
    "starts_at": T0,
    "ends_at": T0 + 3600,
    "created_by": "responder",
    "comment": "x",
    "status": "active",
}
WINDOW = {
    "id": "M-0001",
    "service": "shop",
    "routes": [],
    "weekly": False,
    "starts_at": T0,
    "ends_at": T0 + 3600,
    "weekdays": [],
    "start_minute": None,
    "end_minute": None,
    "schedule": "",
    "created_by": "responder",
    "comment": "x",
    "status": "active",
}
HELD = {
    "at": T0,
    "fingerprint": "f",
    "kind": "error_burst",
    "service": "api",
    "route": "POST /pay",
    "reason": "silenced",
    "rule": "S-0001",
    "cause": "silence",
    "held": True,
}


def with_(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**record, **changes}


@pytest.fixture
def foreign(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Response]:
    """The CLI talks to a server that answers with canned responses, as a server that is not
    Stanch (or a proxy in front of one) would: append the responses it gives, in order."""
    answers: list[httpx.Response] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    def factory(base_url: str, headers: Mapping[str, str], timeout: float) -> httpx.Client:
        transport = httpx.MockTransport(handler)
        return httpx.Client(base_url=base_url, headers=dict(headers), transport=transport)

    monkeypatch.setattr(remote, "client_factory", factory)
    return answers


def raw_json(text: str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=text.encode(), headers={"content-type": "application/json"}
    )


ADD = ["silences", "add", "service=api", "--for", "1h", "-c", "x"]
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("args", "body"),
    [
        (ADD, "{}"),
        (ADD, json.dumps(with_(SILENCE, id=7))),
        (ADD, json.dumps(with_(SILENCE, id="S-1\n\u001b[2J"))),  # printed alone on stdout
        (ADD, "[]"),
        (["silences", "expire", "S-0001"], "{}"),
        (["maintenance", "end", "M-0001"], "null"),
        (["maintenance", "add", "shop", "--for", "1h", "-c", "x"], json.dumps(SILENCE)),
        (["silences", "list"], "[1, 2]"),
        (["silences", "list"], "{}"),
        (["silences", "list", "--json"], "{}"),
        (["silences", "list"], "null"),
        (["silences", "list"], json.dumps([with_(SILENCE, matchers=[{"field": "a"}])])),
        (["silences", "list"], json.dumps([with_(SILENCE, comment=None)])),
        (["silences", "list"], json.dumps([with_(SILENCE, starts_at=True)])),
        (["silences", "list"], json.dumps([with_(SILENCE, starts_at="2027-01-15")])),
        (["silences", "list"], json.dumps([with_(SILENCE, starts_at=float("nan"))])),
        (["silences", "list"], json.dumps([with_(SILENCE, ends_at=float("inf"))])),
        (["silences", "list"], json.dumps([with_(SILENCE, starts_at=1e300)])),
        (["silences", "list"], json.dumps([with_(SILENCE, ended_at=-1e300)])),
        (["silences", "list"], json.dumps([with_(SILENCE, starts_at=10**30)])),
        (["silences", "list"], DEEP),
        (["silences", "list"], "[" * 500 + "]" * 500),
        (["maintenance", "list"], "[1, 2]"),
        (["maintenance", "list"], "null"),
        (["maintenance", "list"], json.dumps([with_(WINDOW, routes="POST /pay")])),
        (["maintenance", "list", "--all"], json.dumps([with_(WINDOW, ended_at="soon")])),
        (["suppressed"], "null"),
        (["suppressed"], "{}"),
        (["suppressed"], json.dumps([with_(HELD, held="yes")])),
        (["suppressed"], json.dumps([with_(HELD, at=float("nan"))])),
        (["suppressed", "--json"], DEEP),
        (ADD, json.dumps(with_(SILENCE, warnings="none"))),
        (ADD, json.dumps(with_(SILENCE, warnings=[1]))),
    ],
)
def test_an_answer_of_the_wrong_shape_is_one_line_not_a_traceback(
    foreign: list[httpx.Response], args: list[str], body: str
) -> None:
    """Any 2xx JSON that is not what a Stanch server sends (wrong type, missing field, a time
    that is no date, nesting that would overflow the decoder) is refused with one line, exit
    1, with or without --json; nothing is printed on stdout, not even "No silences"."""
    foreign.append(raw_json(body, 201 if args[1:2] == ["add"] else 200))
    result = stanch(*args, token="stanch_a_b")
    assert result.exit_code == 1, result.output
    line = one_error_line(result)
    assert line.startswith("error: unexpected answer from http://stanch.test: "), line
    assert line.endswith("(is it a Stanch server?)"), line
    assert "\x1b" not in line
    assert result.stdout == ""


def test_answers_of_the_right_shape_from_any_server_are_shown(
    foreign: list[httpx.Response],
) -> None:
    """The check is on the fields used, not more: extra fields are fine, as are numbers
    written as integers and a weekly window's null start."""
    extra = with_(SILENCE, starts_at=int(T0), future_field={"a": [1, 2]})
    foreign.append(raw_json(json.dumps([extra])))
    listed = stanch("silences", "list", token="stanch_a_b")
    assert listed.exit_code == 0, listed.output
    assert "2027-01-15 08:00" in listed.stdout

    weekly = with_(
        WINDOW, weekly=True, starts_at=None, ends_at=None, schedule="Mon 02:00-04:00 UTC"
    )
    foreign.append(raw_json(json.dumps([weekly])))
    windows = stanch("maintenance", "list", token="stanch_a_b")
    assert windows.exit_code == 0, windows.output
    assert "Mon 02:00-04:00 UTC" in windows.stdout


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (
            httpx.Response(
                404,
                text="<!DOCTYPE HTML><html><head><title>404 Not Found</title></head><body>"
                "<h1>Not Found</h1><p>The requested URL was not found on this server.</p>"
                "<address>Apache/2.4.41 (Ubuntu) Server</address></body></html>",
                headers={"content-type": "text/html"},
            ),
            "error: http://stanch.test answered 404 for /api/v1/silences: is it a Stanch server?",
        ),
        (
            raw_json('{"detail": {"message": "nope"}}', 404),
            "error: http://stanch.test answered 404 for /api/v1/silences: is it a Stanch server?",
        ),
        (
            raw_json('{"error": "no such route"}', 404),
            "error: http://stanch.test answered 404 for /api/v1/silences: is it a Stanch server?",
        ),
        (
            raw_json('{"detail": "Not Found"}', 404),
            "error: http://stanch.test answered 404 for /api/v1/silences: is it a Stanch server?",
        ),
        (
            httpx.Response(405, text="Method Not Allowed"),
            "error: http://stanch.test answered 405 for /api/v1/silences: is it a Stanch server?",
        ),
        (
            httpx.Response(502, text="<html><body><h1>502 Bad Gateway</h1></body></html>"),
            "error: the server failed (HTTP 502): no detail",
        ),
        (
            httpx.Response(403, text="<html>Forbidden by the proxy</html>"),
            "error: listing silences was refused: the token role may not do this",
        ),
        (raw_json(DEEP, 500), "error: the server failed (HTTP 500): no detail"),
    ],
)
def test_only_a_json_detail_is_taken_as_the_servers_words(
    foreign: list[httpx.Response], response: httpx.Response, says: str
) -> None:
    """An HTML error page (Apache's 404, a proxy's 502) is not echoed as if it were Stanch
    explaining itself: only a JSON body's string ``detail`` is."""
    foreign.append(response)
    result = stanch("silences", "list", token="stanch_a_b")
    assert result.exit_code == 1
    assert one_error_line(result) == says


# ---------------------------------------------------------------------- the URL


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://localhost:abc", "Invalid port"),
        ("http://[::1", "expected http://HOST:PORT"),
        ("http://a..b", "not a host name"),
        ("http://" + "a" * 64 + ".example", "not a host name"),
        ("http://exa mple.com", "not a host name"),
        ("http://", "expected http://HOST:PORT"),
        ("http://:8080", "expected http://HOST:PORT"),
        ("ftp://x", "expected http://HOST:PORT"),
        ("http://x:99999", "expected http://HOST:PORT"),
        ("http://x/?page=2", "no ?query"),
    ],
)
def test_a_malformed_url_is_refused_before_any_request(
    no_requests: None, url: str, says: str
) -> None:
    result = stanch("silences", "list", token="stanch_a_b", url=url)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith("error: --url "), line
    assert says in line


@pytest.mark.parametrize(
    "url", ["http://x", "HTTPS://x:1/", "http://[::1]:8080", "http://bücher.example"]
)
def test_short_and_unusual_but_valid_urls_are_used(foreign: list[httpx.Response], url: str) -> None:
    foreign.append(raw_json("[]"))
    result = stanch("silences", "list", token="stanch_a_b", url=url)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No silences in force."


@pytest.mark.parametrize(
    "exc",
    [httpx.InvalidURL("Invalid port: 'abc'"), UnicodeError("label empty or too long")],
)
def test_a_url_httpx_cannot_use_is_one_line_even_at_request_time(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """Neither is an httpx.HTTPError: should one get past the checks, it still is no traceback."""

    def factory(*_: Any) -> httpx.Client:
        def handler(request: httpx.Request) -> httpx.Response:
            raise exc

        return httpx.Client(base_url=BASE, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(remote, "client_factory", factory)
    result = stanch("silences", "list", token="stanch_a_b")
    assert result.exit_code == 2
    assert one_error_line(result).startswith(f"error: --url '{BASE}': ")


# ---------------------------------------------------------------------- text from the server

HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x9b31m:warning: [bold]x[/bold] \u202eevil\u202c ends\\"


def no_control_characters(text: str) -> None:
    bad = {c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F}
    bad |= set(text) & {"\u202e", "\u202c"}
    assert not bad, f"control characters reached the terminal: {bad!r}"


def test_stored_text_cannot_drive_the_terminal(
    ctx: ServerContext,
    clock: Clock,
    tokens: dict[Role, str],
    requests_seen: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ESC, C1 CSI, BEL, bidi overrides in comments, patterns, services and routes reach the
    screen as visible escapes; markup and :emoji: codes stay literal text; a trailing
    backslash stays one backslash: in tables, the add summaries and --json alike."""
    monkeypatch.setattr(noise_cli, "PIPED_WIDTH", 1000)  # no cell folds: each is one string
    responder = tokens[Role.RESPONDER]
    added = stanch("silences", "add", "route=* /x*", f"label:team!=x{HOSTILE}", "--for", "1h",
                   "-c", HOSTILE, token=responder)  # fmt: skip
    assert added.exit_code == 0, added.output
    windowed = stanch("maintenance", "add", f"svc{HOSTILE}", "--route", f"* /r{HOSTILE}",
                      "--for", "1h", "-c", HOSTILE, token=responder)  # fmt: skip
    assert windowed.exit_code == 0, windowed.output
    assert ctx.engine.ingest_alert(firing(f"POST /x{HOSTILE}", clock.t), clock.t) is None

    for result in (added, windowed):
        no_control_characters(result.stderr)
        assert "\\x1b[2J" in result.stderr
    for args in (["silences", "list"], ["maintenance", "list"], ["suppressed"]):
        shown = stanch(*args, token=responder)
        assert shown.exit_code == 0, shown.output
        no_control_characters(shown.stdout)
        for visible in ("\\x1b[2J", "\\x1b]0;pwned\\x07", "\\x9b31m", "\\u202eevil\\u202c",
                        ":warning: [bold]x[/bold]"):  # fmt: skip
            assert visible in shown.stdout, (args, shown.stdout)
        assert "⚠" not in shown.stdout
    comments = stanch("silences", "list", token=responder).stdout
    assert "ends\\ " in comments or "ends\\\n" in comments or comments.rstrip().endswith("ends\\")
    assert "ends\\\\" not in comments

    listed = stanch("silences", "list", "--json", token=responder)
    assert json.loads(listed.stdout)[0]["comment"] == HOSTILE.strip()  # exact, for scripts
    assert "\x1b" not in listed.stdout  # JSON escapes it: \u001b


def test_server_words_in_errors_cannot_drive_the_terminal(foreign: list[httpx.Response]) -> None:
    foreign.append(httpx.Response(409, json={"detail": f"conflict {HOSTILE}"}))
    result = stanch(*ADD, token="stanch_a_b")
    assert result.exit_code == 1
    line = one_error_line(result)
    no_control_characters(line)
    assert line.startswith("error: conflict \\x1b[2J")
    assert ":warning: [bold]x[/bold]" in line
    assert line.endswith("ends\\")


# ---------------------------------------------------------------------- tables in a pipe


def test_tables_in_a_pipe_are_not_cut_at_80_columns(
    tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """Under CliRunner stdout is no terminal, as in `stanch silences list | grep` or `> file`:
    every cell is whole (no ellipsis, nothing cropped at the right edge)."""
    responder = tokens[Role.RESPONDER]
    comment = "capacity test of the payment path, announced in #ops, owner: the payments team"
    added = stanch("silences", "add", "route=POST /api/v2/payments/authorize", "kind!=traffic_*",
                   "--for", "2h", "-c", comment, token=responder)  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = stanch("silences", "list", token=responder)
    assert listed.exit_code == 0, listed.output
    assert "…" not in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if "S-0001" in line)
    for cell in ("'route=POST /api/v2/payments/authorize'", "2027-01-15 08:00",
                 "2027-01-15 10:00", "active", "responder", comment):  # fmt: skip
        assert cell in row, listed.stdout


# ---------------------------------------------------------------------- a start in the past


def test_a_start_and_duration_both_in_the_past_are_refused(no_requests: None) -> None:
    """amtool's rule: what would end before now is refused, not silently moved to start now
    (the server would make `--starts 2001-01-01 --for 2h` two hours from now)."""
    result = stanch("silences", "add", "service=api", "--starts", "2001-01-01", "--for", "2h",
                    "-c", "x", token="stanch_a_b")  # fmt: skip
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--starts '2001-01-01' with --for '2h' would end at 2001-01-01 02:00 UTC" in line
    window = stanch("maintenance", "add", "shop", "--starts", "2001-01-01", "--for", "2h",
                    "-c", "x", token="stanch_a_b")  # fmt: skip
    assert window.exit_code == 2
    assert "would end at 2001-01-01 02:00 UTC" in one_error_line(window)


def test_a_past_start_keeps_the_end_asked_for_and_says_the_start_is_now(
    ctx: ServerContext,
    clock: Clock,
    tokens: dict[Role, str],
    requests_seen: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--starts an hour ago --for 2h ends an hour from now (as typed), not two hours from now;
    stderr says the start became now."""
    monkeypatch.setattr(noise_cli, "now", clock)
    added = stanch("silences", "add", "service=api", "--starts", str(T0 - 3600), "--for", "2h",
                   "-c", "x", token=tokens[Role.RESPONDER])  # fmt: skip
    assert added.exit_code == 0, added.output
    (silence,) = ctx.engine.noise.listed(clock.t)[0]
    assert (silence.starts_at, silence.ends_at) == (T0, T0 + 3600)
    assert "--starts 2027-01-15 07:00 UTC is past: it starts now, 2027-01-15 08:00" in added.stderr


# ---------------------------------------------------------------------- warnings


def test_a_rule_matching_no_series_yet_is_made_with_a_warning_on_stderr(
    ctx: ServerContext, tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    """The server has seen no traffic for the route: the rule is created (its id alone on
    stdout, as ever), and the server's warning is one ``warning:`` line on stderr."""
    responder = tokens[Role.RESPONDER]
    added = stanch("silences", "add", "route=POST /checkout", "--for", "1h", "-c", "x",
                   token=responder)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout == "S-0001\n"
    warnings = [line for line in added.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, added.stderr
    assert "route=POST /checkout matches no series seen so far" in warnings[0]
    windowed = stanch("maintenance", "add", "shop", "--for", "1h", "-c", "x", token=responder)
    assert windowed.exit_code == 0, windowed.output
    assert "warning: service 'shop' matches no series seen so far" in windowed.stderr
    assert set(ctx.engine.noise.silences) == {"S-0001"}


def test_maintenance_on_a_route_without_its_method_is_refused(
    ctx: ServerContext, tokens: dict[Role, str], requests_seen: list[str]
) -> None:
    result = stanch("maintenance", "add", "shop", "--route", "/search", "--for", "1h", "-c", "x",
                    token=tokens[Role.RESPONDER])  # fmt: skip
    assert result.exit_code == 1
    assert "route names include the method" in one_error_line(result)
    assert ctx.engine.noise.listed(T0)[1] == []


def test_an_older_server_without_warnings_is_fine(foreign: list[httpx.Response]) -> None:
    """``warnings`` is new: a create answer without it is read as no warning."""
    foreign.append(raw_json(json.dumps(SILENCE), 201))
    added = stanch(*ADD, token="stanch_a_b")
    assert added.exit_code == 0, added.output
    assert added.stdout == "S-0001\n"
    assert "warning" not in added.stderr
    foreign.append(raw_json(json.dumps(with_(WINDOW, warnings=["w1", "w2"])), 201))
    windowed = stanch("maintenance", "add", "shop", "--for", "1h", "-c", "x", token="stanch_a_b")
    assert windowed.exit_code == 0, windowed.output
    assert "warning: w1\nwarning: w2\n" in windowed.stderr
