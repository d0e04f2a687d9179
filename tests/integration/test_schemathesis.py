"""Schemathesis against the control plane's OpenAPI document, in-process over ASGI.

Every operation gets requests generated from its schema (positive: valid by the schema;
negative: violating it), sent with an admin token, and each answer must be no 5xx and must
match what the document promises: a documented status code, content type, headers and body
schema, and a 401 when the credentials the document requires are left out.

Two checks are left out on purpose. ``positive_data_acceptance`` wants every schema-valid
request accepted, but the API validates more than JSON Schema can say (no NUL in strings,
runbook YAML semantics, unique token names, PagerDuty's dedup_key rules), so it answers 400
there by design. ``negative_data_rejection`` wants every schema-violating request refused,
but unknown query parameters and extra headers are ignored, as HTTP APIs do.

Why not ``@schema.parametrize()``: that needs the schema at import time (an app, a database)
and its lazy form, ``schemathesis.pytest.from_fixture``, fails on pytest 9 (it reads
``node._nodeid``). So each operation is run as a Hypothesis test built here, and the failures
of all operations are reported together, by operation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stanch.server import ServerContext, Settings, create_app
from stanch.server.auth import issue_token
from stanch.sources import PayloadError, alertmanager

pytestmark = pytest.mark.integration

Operation = APIOperation[Any, Any, Any, Any]
MAX_EXAMPLES = 25  # per operation and mode: 31 operations x 2 modes run in about 15 s
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


@dataclass(frozen=True, slots=True)
class Api:
    operations: list[Operation]
    headers: dict[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on a fresh SQLite store (step loop off), its schema, and an admin's header."""
    db: Path = tmp_path_factory.mktemp("schemathesis") / "stanch.db"
    ctx = ServerContext.open(Settings(db=f"sqlite:///{db}", run_loop=False))
    try:
        _, token = issue_token(ctx.store, "fuzzer", "admin", created_by="test", now=time.time())
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(ctx))
        operations = []
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # the document itself is broken: nothing else to test
            operations.append(result.ok())
        yield Api(operations, {"Authorization": f"Bearer {token}"})
    finally:
        ctx.close()


def _has_inputs(operation: Operation) -> bool:
    """Whether a request to ``operation`` has anything a negative case could break."""
    parts = (operation.path_parameters, operation.query, operation.headers, operation.body)
    return any(len(part) for part in parts)


def _fuzz(operation: Operation, mode: GenerationMode, headers: dict[str, str]) -> None:
    # derandomize: CI sees the same examples each run (a failure is reproducible, not flaky);
    # database=None: nothing written to .hypothesis from here.
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Operation]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def _failures(api: Api, mode: GenerationMode, wanted: Callable[[Operation], bool]) -> str:
    """Each failing operation's label and report, one block each ("" when all pass)."""
    found: dict[str, BaseException] = {}
    tried = 0
    for operation in api.operations:
        if not wanted(operation):
            continue
        tried += 1
        try:
            _fuzz(operation, mode, api.headers)
        except (Exception, BaseExceptionGroup) as exc:  # Schemathesis' FailureGroup is Base
            found[operation.label] = exc
    assert tried > 20, f"only {tried} operations found: is the schema loaded?"
    return "\n\n".join(f"== {label}\n{exc}" for label, exc in found.items())


def _any(_: Any) -> bool:
    return True


def test_valid_requests_get_documented_answers(api: Api) -> None:
    """Schema-valid requests to every operation: no 5xx, answers as the document says."""
    failures = _failures(api, GenerationMode.POSITIVE, _any)
    assert not failures, failures


def test_invalid_requests_get_documented_refusals(api: Api) -> None:
    """Schema-violating requests to every operation with inputs: no 5xx, documented 4xx."""
    failures = _failures(api, GenerationMode.NEGATIVE, _has_inputs)
    assert not failures, failures


@pytest.mark.parametrize("stamp", ["2026-01-01T00:00:00-50:00", "2026-01-01T00:00:00+05:99"])
def test_an_impossible_utc_offset_is_refused_not_a_crash(stamp: str) -> None:
    """Found by the fuzzing above: a startsAt offset past ±23:59 was a 500, now a 400."""
    body = {"version": "4", "status": "firing", "alerts": [{"status": "firing", "startsAt": stamp}]}
    with pytest.raises(PayloadError, match=r"alerts\.0\.startsAt: not a valid UTC offset"):
        alertmanager.parse(body, now=time.time())
