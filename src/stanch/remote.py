"""Talking to a running ``stanch serve`` from the command line, as amtool talks to Alertmanager.

Commands that change what the server does (silences, maintenance windows) go through its API,
not its database: the server's token check, roles and audit trail then apply to a terminal
exactly as to the dashboard, and the engine that holds the rules learns of the change at once.
This module owns the connection (``--url``, ``--token``) and turns every way a request can
fail into one line a person can act on (:class:`RemoteError`), so no command shows a
traceback or a raw JSON error.

``client_factory`` builds the ``httpx.Client``; tests replace it with one that speaks to the
app in-process. httpx is imported only when a request is made: it costs a third of a second,
and ``stanch --help`` should not pay it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import typer

from stanch import __version__

if TYPE_CHECKING:
    import httpx

DEFAULT_URL: Final = "http://127.0.0.1:8080"  # where `stanch serve` listens by default
API_PREFIX: Final = "/api/v1"
TIMEOUT_S: Final = 10.0
_MAX_DETAIL: Final = 500  # characters of a server's message shown; it stays one line

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


def build_client(base_url: str, headers: Mapping[str, str], timeout: float) -> httpx.Client:
    import httpx

    return httpx.Client(base_url=base_url, headers=dict(headers), timeout=timeout)


ClientFactory = Callable[[str, Mapping[str, str], float], "httpx.Client"]
client_factory: ClientFactory = build_client


@dataclass(frozen=True, slots=True)
class Remote:
    """One server and the token to call it with. Each call is one request on a fresh client:
    a command makes one or two, and a long-lived pool would only outlive the command."""

    url: str
    token: str

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, doing: str) -> Any:
        return self._call("GET", path, doing=doing, params=params)

    def post(self, path: str, body: Mapping[str, Any], *, doing: str) -> Any:
        return self._call("POST", path, doing=doing, json_body=body)

    def delete(self, path: str, *, doing: str) -> Any:
        return self._call("DELETE", path, doing=doing)

    def _call(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> Any:
        """The decoded JSON answer of a 2xx response; anything else is a RemoteError.
        ``doing`` ("expiring silence S-0001") names the request in a refusal."""
        import httpx

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
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise RemoteError(
                    f"{self.url} answered HTTP {response.status_code} without JSON: "
                    "is it a Stanch server?"
                ) from None
        raise RemoteError(self._refusal(response, doing))

    def _refusal(self, response: httpx.Response, doing: str) -> str:
        status = response.status_code
        detail = _detail(response)
        if response.is_redirect:
            where = response.headers.get("location", "elsewhere")
            return f"{self.url} redirects to {where}: pass that as --url"
        if status == 401:
            return (
                f"the server refused the token ({detail or 'unauthorized'}): create one with "
                "`stanch token create --role responder --name YOU` and pass it with "
                "STANCH_TOKEN or --token"
            )
        if status == 403:
            return f"{doing} was refused: {detail or 'the token role may not do this'}"
        if status == 404 and detail and detail != "Not Found":
            return detail  # the server's own words: "no silence S-9 is in force"
        if status in (404, 405):
            return (
                f"{self.url} has no {response.request.url.path} (HTTP {status}): "
                "is it a Stanch server?"
            )
        if status == 503:
            retry = response.headers.get("retry-after")
            return f"the server is busy{f'; retry in {retry} s' if retry else ''}: {detail}"
        if status >= 500:
            return f"the server failed (HTTP {status}): {detail or 'no detail'}"
        return detail or f"{doing} was refused (HTTP {status})"


def connect(url: str, token: str | None) -> Remote:
    """The server to call, after the checks that need no request (exit status 2)."""
    url = url.strip().rstrip("/").removesuffix(API_PREFIX)
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise RemoteError(f"--url {url!r}: expected http://HOST:PORT or https://HOST", 2)
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


def _detail(response: httpx.Response) -> str:
    """The server's ``detail`` on one line: a string as is, FastAPI's list of problems as
    ``field.path: message; ...``; a body that is not Stanch's JSON, shortened."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text)
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        return _one_line("; ".join(_problem(p) for p in detail))
    if isinstance(detail, str):
        return _one_line(detail)
    return _one_line(json.dumps(detail)) if detail is not None else ""


def _problem(problem: Any) -> str:
    if not isinstance(problem, dict):
        return str(problem)
    loc = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path")]
    message = str(problem.get("msg", "invalid"))
    return f"{'.'.join(loc)}: {message}" if loc else message


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
