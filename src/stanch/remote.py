"""Talking to a running ``stanch serve`` from the command line, as amtool talks to Alertmanager.

Commands that change what the server does (silences, maintenance windows) go through its API,
not its database: the server's token check, roles and audit trail then apply to a terminal
exactly as to the dashboard, and the engine that holds the rules learns of the change at once.
This module owns the connection (``--url``, ``--token``) and turns every way a request can
fail into one line a person can act on (:class:`RemoteError`), so no command shows a
traceback or a raw JSON error: a URL httpx cannot use, a server that is down, an error page
that is not Stanch's, and a 2xx answer that is not the shape the command reads (each call
names the shape it expects, checked strictly before any field is used).

``client_factory`` builds the ``httpx.Client``; tests replace it with one that speaks to the
app in-process. httpx is imported at the top like any dependency: ``stanch.cli`` imports it
anyway (``stanch.metrics`` -> ``stanch.notify``), so deferring it here would save nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import httpx
import typer
from pydantic import TypeAdapter, ValidationError

from stanch import __version__

DEFAULT_URL: Final = "http://127.0.0.1:8080"  # where `stanch serve` listens by default
API_PREFIX: Final = "/api/v1"
TIMEOUT_S: Final = 10.0
_MAX_DETAIL: Final = 500  # characters of a server's message shown; it stays one line
MAX_DEPTH: Final = 32  # nesting of an answer; Stanch's nest 3 deep, json.dumps recurses
URL_HINT: Final = "expected http://HOST:PORT or https://HOST"
_LABEL: Final = re.compile(r"[A-Za-z0-9_-]{1,63}")  # one DNS label, as the IDNA codec takes it
# C0 (ESC, BEL, CR...), DEL, C1 (CSI U+009B...), line/paragraph separators, bidi controls
_UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

T = TypeVar("T")

UrlOption = typer.Option(
    DEFAULT_URL, "--url", envvar="STANCH_URL", help="The Stanch server (`stanch serve`)."
)
TokenOption = typer.Option(
    None,
    "--token",
    envvar="STANCH_TOKEN",
    help="API token (`stanch token create`); prefer the env var: options show in `ps`.",
)


class RemoteError(Exception):
    """A request that did not get the answer wanted, said in one line; ``code`` is the exit
    status (2 for input refused before any request, 1 otherwise)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def printable(text: str) -> str:
    """``text`` safe to write to a terminal: each control character (ESC, BEL, the C1 CSI
    U+009B, line separators, bidirectional overrides) becomes a visible ``\\x1b`` or
    ``\\u202e``, so text stored by anyone cannot move the cursor, retitle the window,
    recolour or reorder what the reader sees. Newlines too: the caller joins lines itself."""
    return _UNSAFE.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def build_client(base_url: str, headers: Mapping[str, str], timeout: float) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=dict(headers), timeout=timeout)


ClientFactory = Callable[[str, Mapping[str, str], float], httpx.Client]
client_factory: ClientFactory = build_client


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """A 2xx answer: ``value`` checked against the shape asked for (fields typed), ``raw``
    the JSON as the server sent it, extra fields included (what ``--json`` prints)."""

    value: T
    raw: Any


@dataclass(frozen=True, slots=True)
class Remote:
    """One server and the token to call it with. Each call is one request on a fresh client:
    a command makes one or two, and a long-lived pool would only outlive the command."""

    url: str
    token: str

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        doing: str,
        shape: TypeAdapter[T],
    ) -> Answer[T]:
        return self._call("GET", path, doing=doing, shape=shape, params=params)

    def post(
        self, path: str, body: Mapping[str, Any], *, doing: str, shape: TypeAdapter[T]
    ) -> Answer[T]:
        return self._call("POST", path, doing=doing, shape=shape, json_body=body)

    def delete(self, path: str, *, doing: str, shape: TypeAdapter[T]) -> Answer[T]:
        return self._call("DELETE", path, doing=doing, shape=shape)

    def _call(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        shape: TypeAdapter[T],
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> Answer[T]:
        """The JSON answer of a 2xx response, of the ``shape`` wanted; anything else is a
        RemoteError. ``doing`` ("expiring silence S-0001") names the request in a refusal."""
        headers = {
            "Authorization": f"Bearer {self.token}",
            "User-Agent": f"stanch-cli/{__version__}",
            "Accept": "application/json",
        }
        try:
            with client_factory(self.url, headers, TIMEOUT_S) as client:
                response = client.request(method, API_PREFIX + path, params=params, json=json_body)
        except httpx.TimeoutException:
            raise RemoteError(
                f"the server at {self.url} did not answer within {TIMEOUT_S:.0f} s"
            ) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise RemoteError(
                f"cannot reach the Stanch server at {self.url}: {_one_line(str(exc))} "
                "(is `stanch serve` running there? set --url or STANCH_URL)"
            ) from None
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"request to {self.url} failed: {_one_line(str(exc)) or type(exc).__name__}"
            ) from None
        except (httpx.InvalidURL, UnicodeError) as exc:  # neither is an httpx.HTTPError
            raise RemoteError(f"--url {self.url!r}: {_one_line(str(exc))}; {URL_HINT}", 2) from None
        if response.is_success:
            return self._answer(response, shape)
        raise RemoteError(self._refusal(response, doing))

    def _answer(self, response: httpx.Response, shape: TypeAdapter[T]) -> Answer[T]:
        request = f"{response.request.method} {response.request.url.path}"
        raw = _json(response)
        if raw is _NOT_JSON:
            problem = f"HTTP {response.status_code} without valid JSON"
        elif _deeper_than(raw, MAX_DEPTH):
            problem = f"JSON nested deeper than {MAX_DEPTH} levels"
        else:
            try:
                return Answer(shape.validate_python(raw), raw)
            except ValidationError as exc:
                problem = _first_problem(exc)
        raise RemoteError(
            f"unexpected answer from {self.url}: {request}: {problem} (is it a Stanch server?)"
        )

    def _refusal(self, response: httpx.Response, doing: str) -> str:
        status = response.status_code
        detail = _detail(response)
        if response.is_redirect:
            where = response.headers.get("location", "elsewhere")
            return f"{self.url} redirects to {_one_line(where)}: pass that as --url"
        if status == 401:
            return (
                f"the server refused the token ({detail or 'unauthorized'}): create one with "
                "`stanch token create --role responder --name YOU` and pass it with "
                "STANCH_TOKEN or --token"
            )
        if status == 403:
            return f"{doing} was refused: {detail or 'the token role may not do this'}"
        if status == 404 and detail and detail != "Not Found":
            return detail  # the server's own words, from its JSON: "no silence S-9 is in force"
        if status in (404, 405):
            path = response.request.url.path
            return f"{self.url} answered {status} for {path}: is it a Stanch server?"
        if status == 503:
            retry = _one_line(response.headers.get("retry-after", ""))
            return (
                f"the server is busy{f'; retry in {retry} s' if retry else ''}: "
                f"{detail or 'no detail'}"
            )
        if status >= 500:
            return f"the server failed (HTTP {status}): {detail or 'no detail'}"
        return detail or f"{doing} was refused (HTTP {status})"


def connect(url: str, token: str | None) -> Remote:
    """The server to call, after the checks that need no request (exit status 2)."""
    url = url.strip().rstrip("/").removesuffix(API_PREFIX)
    _check_url(url)
    token = (token or "").strip()
    if not token:
        raise RemoteError(
            "no API token: set STANCH_TOKEN or pass --token "
            "(`stanch token create --role responder --name YOU` makes one)",
            2,
        )
    if not token.isascii() or not token.isprintable() or " " in token:
        raise RemoteError("the token has characters no Stanch token has: check STANCH_TOKEN", 2)
    return Remote(url, token)


def _check_url(url: str) -> None:
    """Refuse what httpx could not request, or would send nowhere sensible: a URL it cannot
    parse (a bad port, an unclosed ``[``), one that is not http(s), one without a host, a
    host that is not a DNS name (``a..b``, a label over 63 characters, a space) or an IP."""

    def refuse(why: str = "") -> RemoteError:
        return RemoteError(f"--url {url!r}: {why + '; ' if why else ''}{URL_HINT}", 2)

    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")  # an IDN as its xn-- form; an IP as is
    except (httpx.InvalidURL, UnicodeError) as exc:  # IDNAError is a UnicodeError
        raise refuse(_one_line(str(exc))) from None
    if parsed.scheme not in ("http", "https") or not host:
        raise refuse()
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise refuse(f"port {parsed.port} is out of range")
    if parsed.query or parsed.fragment:
        raise refuse("no ?query or #fragment")
    if ":" not in host:  # not an IPv6 literal, which httpx has checked: a name or IPv4
        labels = host.removesuffix(".").split(".")
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise refuse(f"{host!r} is not a host name")


_NOT_JSON: Final = object()


def _json(response: httpx.Response) -> Any:
    """The decoded body, or ``_NOT_JSON``: not JSON (NaN and Infinity are not, nor is a
    number too large for a float), not UTF-8, or nested past the decoder's recursion."""
    try:
        return json.loads(response.content, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} does not fit a float")
    return number


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects deeper than ``limit`` (counted without
    recursion, so the answer to a hostile body is not a RecursionError)."""
    if not isinstance(value, dict | list):
        return False
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _first_problem(exc: ValidationError) -> str:
    """The first of pydantic's problems as ``answer[0].starts_at: Input should be ...``."""
    problem = exc.errors(include_url=False, include_input=False)[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"])
    message = "Input should be an object" if problem["type"] == "model_type" else problem["msg"]
    return f"answer{where}: {message}"


def _detail(response: httpx.Response) -> str:
    """The server's ``detail`` on one line, when the body is JSON with one (a string, or
    FastAPI's list of problems as ``field.path: message; ...``); else "". A body that is
    not Stanch's JSON (a proxy's or another server's HTML page) is never taken as its words."""
    body = _json(response)
    if not isinstance(body, dict) or _deeper_than(body, MAX_DEPTH):
        return ""
    detail = body.get("detail")
    if isinstance(detail, list):
        return _one_line("; ".join(_problem(p) for p in detail))
    if isinstance(detail, str):
        return _one_line(detail)
    return ""


def _problem(problem: Any) -> str:
    if not isinstance(problem, dict):
        return str(problem)
    loc = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path")]
    message = str(problem.get("msg", "invalid"))
    return f"{'.'.join(loc)}: {message}" if loc else message


def _one_line(text: str) -> str:
    text = printable(" ".join(text.split()))
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
