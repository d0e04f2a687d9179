from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.actions import ActionKind, ActionMode
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.errors import RunbookError, ValidationError
from stanch.core.runbook import (
    MAX_RUNBOOK_BYTES,
    ActionSpec,
    Runbook,
    load_runbook,
    load_runbook_text,
    parse_duration,
)
from stanch.core.severity import Severity

VALID = """\
version: 1
defaults:
  ttl: 30m
  verify_within: 2m
rules:
  - name: checkout-errors
    description: Payment failures
    match:
      kinds: [error_burst, slo_burn]
      min_severity: SEV3
      services: ["shop*"]
      routes: ["POST /checkout*"]
      labels: {team: payments}
    actions:
      - kind: circuit_break
        mode: auto
        ttl: 10m
        verify_within: 1m
        target: "POST /checkout"
        params: {open_for: 30s, probes: 5}
      - kind: throttle_client
        mode: approve
        params: {rate: 2.5}
    stop: true
  - name: anything-else
    match: {}
    actions:
      - kind: shed_load
        mode: approve
        ttl: 1h30m
        params: {fraction: 0.2}
"""


def make_alert(
    kind: AlertKind = AlertKind.ERROR_BURST,
    severity: Severity = Severity.SEV2,
    service: str = "shop",
    route: str = "POST /checkout",
    labels: dict[str, str] | None = None,
) -> Alert:
    return Alert(
        fingerprint="f",
        kind=kind,
        service=service,
        route=route,
        signal="error_ratio",
        severity=severity,
        status=AlertStatus.FIRING,
        started_at=0.0,
        updated_at=0.0,
        observed=0.2,
        expected=0.01,
        score=9.0,
        explanation="",
        labels={"team": "payments"} if labels is None else labels,
    )


def problems_of(text: str, filename: str = "rb.yaml") -> list[str]:
    with pytest.raises(RunbookError) as info:
        load_runbook_text(text, filename)
    return info.value.problems


def one_action(action: str) -> str:
    """A runbook whose only rule has one action; the action's first line is line 6."""
    return "version: 1\nrules:\n  - name: r\n    match: {}\n    actions:\n" + action


# --------------------------------------------------------------------------- parsing


def test_valid_runbook_parses_with_normalized_durations_and_filled_params() -> None:
    """A valid file gives frozen values: durations in seconds, defaults and params filled in."""
    runbook = load_runbook_text(VALID, "shop.yaml")
    assert runbook.source == "shop.yaml"
    assert [r.name for r in runbook.rules] == ["checkout-errors", "anything-else"]
    first = runbook.rules[0]
    assert first.description == "Payment failures"
    assert first.stop is True
    assert first.match.kinds == frozenset({AlertKind.ERROR_BURST, AlertKind.SLO_BURN})
    assert first.match.min_severity is Severity.SEV3
    assert first.match.labels == {"team": "payments"}
    assert first.actions[0] == ActionSpec(
        kind=ActionKind.CIRCUIT_BREAK,
        mode=ActionMode.AUTO,
        ttl_s=600.0,
        verify_within_s=60.0,
        target="POST /checkout",
        params={"open_for": 30.0, "probes": 5, "failure_ratio": 0.5, "min_calls": 10},
    )
    throttle = first.actions[1]
    assert (throttle.ttl_s, throttle.verify_within_s, throttle.target) == (1800.0, 120.0, None)
    assert throttle.params == {"rate": 2.5, "burst": 2, "route": None}
    shed = runbook.rules[1]
    assert shed.stop is False
    assert shed.actions[0].ttl_s == 5400.0
    assert shed.actions[0].params == {"fraction": 0.2}


def test_parsed_values_are_frozen() -> None:
    """Parsed rules cannot be changed in place, so the engine can share them safely."""
    rule = load_runbook_text(VALID).rules[0]
    with pytest.raises(AttributeError):
        rule.stop = False  # type: ignore[misc]


def test_defaults_apply_when_the_file_has_none() -> None:
    """Without a defaults block, actions expire after 30 minutes and verify after 2."""
    runbook = load_runbook_text(one_action("      - {kind: block_client, mode: approve}\n"))
    spec = runbook.rules[0].actions[0]
    assert (spec.ttl_s, spec.verify_within_s, spec.params) == (1800.0, 120.0, {"status": 403})


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("{kind: disable_route, mode: auto}", {"status": 503}),
        ("{kind: throttle_route, mode: auto, params: {rate: 0.5}}", {"rate": 0.5, "burst": 1}),
        ("{kind: throttle_route, mode: auto, params: {rate: 40, burst: 7}}", {"burst": 7}),
        ("{kind: rollback_config, mode: approve}", {"min_confidence": 0.3}),
        (
            "{kind: throttle_client, mode: auto, params: {rate: 3, route: GET /a}}",
            {"rate": 3.0, "burst": 3, "route": "GET /a"},
        ),
    ],
)
def test_each_kind_fills_its_param_defaults(action: str, params: dict[str, Any]) -> None:
    """Every kind's params come back complete, with the documented defaults."""
    spec = load_runbook_text(one_action(f"      - {action}\n")).rules[0].actions[0]
    assert params.items() <= spec.params.items()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("10m", 600.0), ("1h", 3600.0), ("1h30m", 5400.0), ("500ms", 0.5),
     ("1.5s", 1.5), (" 45 ", 45.0), (90, 90.0), (0.25, 0.25)],
)  # fmt: skip
def test_parse_duration_accepts_units_and_plain_seconds(text: str | float, seconds: float) -> None:
    """Durations with h/m/s/ms units, or plain numbers, become float seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1m1h", "1s1s", "5x", "-3s", "s", "1.s", "inf", "9" * 50])
def test_parse_duration_rejects_malformed_text(text: str) -> None:
    """Malformed durations, and units out of order or repeated, raise ValueError."""
    with pytest.raises(ValueError, match=r"."):
        parse_duration(text)


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), True, 10**400])
def test_parse_duration_rejects_non_positive_or_non_finite(value: float) -> None:
    """Zero, negative, infinite, NaN, boolean and overflowing durations are refused."""
    with pytest.raises(ValueError, match=r"."):
        parse_duration(value)


# --------------------------------------------------------------------------- matching


def test_match_by_kind_severity_service_route_and_labels() -> None:
    """A rule matches only when every given condition holds."""
    match = load_runbook_text(VALID).rules[0].match
    assert match.matches(make_alert())
    assert not match.matches(make_alert(kind=AlertKind.LATENCY_SPIKE))
    assert match.matches(make_alert(severity=Severity.SEV3))
    assert not match.matches(make_alert(severity=Severity.SEV4))
    assert match.matches(make_alert(service="shop-eu"))
    assert not match.matches(make_alert(service="Shop"))  # globs are case-sensitive
    assert match.matches(make_alert(route="POST /checkout/confirm"))
    assert not match.matches(make_alert(route="GET /checkout"))
    assert not match.matches(make_alert(labels={}))
    assert not match.matches(make_alert(labels={"team": "search"}))
    assert match.matches(make_alert(labels={"team": "payments", "env": "prod"}))


def test_empty_match_matches_every_alert() -> None:
    """``match: {}`` has no conditions, so it matches anything."""
    match = load_runbook_text(VALID).rules[1].match
    assert match.matches(make_alert(kind=AlertKind.USER_REPORT, service="x", route="*"))


def test_actions_for_returns_actions_in_file_order_and_honours_stop() -> None:
    """Matching rules contribute in file order; a matching ``stop`` rule ends the search."""
    runbook = load_runbook_text(VALID)
    pairs = runbook.actions_for(make_alert())
    assert [(rule.name, spec.kind) for rule, spec in pairs] == [
        ("checkout-errors", ActionKind.CIRCUIT_BREAK),
        ("checkout-errors", ActionKind.THROTTLE_CLIENT),
    ]
    other = runbook.actions_for(make_alert(service="search"))
    assert [(rule.name, spec.kind) for rule, spec in other] == [
        ("anything-else", ActionKind.SHED_LOAD)
    ]


def test_rules_without_stop_all_contribute() -> None:
    """Without ``stop``, every matching rule's actions are returned, first rule first."""
    text = VALID.replace("    stop: true\n", "")
    kinds = [spec.kind for _, spec in load_runbook_text(text).actions_for(make_alert())]
    assert kinds == [ActionKind.CIRCUIT_BREAK, ActionKind.THROTTLE_CLIENT, ActionKind.SHED_LOAD]


def test_stop_rule_without_actions_silences_later_rules() -> None:
    """An action-less rule with ``stop`` is how a runbook says "leave these alerts alone"."""
    text = (
        "version: 1\nrules:\n"
        "  - {name: quiet, match: {services: ['staging-*']}, stop: true}\n"
        "  - {name: all, match: {}, actions: [{kind: shed_load, mode: auto,"
        " params: {fraction: 0.5}}]}\n"
    )
    runbook = load_runbook_text(text)
    assert runbook.actions_for(make_alert(service="staging-shop")) == []
    assert len(runbook.actions_for(make_alert(service="shop"))) == 1


def test_empty_runbook_rules_match_nothing() -> None:
    """A runbook with no rules is valid and asks for nothing."""
    assert load_runbook_text("version: 1\nrules: []\n").actions_for(make_alert()) == []


# --------------------------------------------------------------------------- problems


def test_runbook_error_is_a_validation_error() -> None:
    """Callers that handle any bad user input also catch runbook problems."""
    with pytest.raises(ValidationError):
        load_runbook_text("")


def test_unknown_action_kind_points_at_the_kind_line() -> None:
    """An unknown kind names the file, the kind's line and field, and the known kinds."""
    problems = problems_of(one_action("      - mode: auto\n        kind: teleport\n"))
    assert len(problems) == 1
    assert problems[0].startswith("rb.yaml:7: rules[0].actions[0].kind: unknown action kind")
    assert "circuit_break" in problems[0]


def test_missing_mode_points_at_the_action() -> None:
    """A missing mode is reported on the action's first line."""
    problems = problems_of(one_action("      - kind: circuit_break\n        ttl: 5m\n"))
    assert problems == ["rb.yaml:6: rules[0].actions[0].mode: Field required"]


def test_bad_duration_points_at_its_line() -> None:
    """A malformed duration is reported on its own line, saying what was expected."""
    text = one_action("      - kind: circuit_break\n        mode: auto\n        ttl: 10 minutes\n")
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("rb.yaml:8: rules[0].actions[0].ttl: expected a duration")


def test_bad_default_duration_points_at_its_line() -> None:
    """Durations under ``defaults`` are checked too."""
    problems = problems_of("version: 1\ndefaults:\n  verify_within: soon\nrules: []\n")
    assert len(problems) == 1
    assert problems[0].startswith("rb.yaml:3: defaults.verify_within: expected a duration")


def test_unknown_param_points_at_the_param_and_lists_the_known_ones() -> None:
    """An unknown param is an error on its line, listing the params the kind accepts."""
    text = one_action(
        "      - kind: circuit_break\n        mode: auto\n        params:\n"
        "          probes: 3\n          half_open: 2\n"
    )
    assert problems_of(text) == [
        "rb.yaml:10: rules[0].actions[0].params.half_open: unknown field; "
        "expected one of: failure_ratio, min_calls, open_for, probes"
    ]


def test_negative_rate_points_at_the_rate() -> None:
    """A rate must be positive; the error is on the rate's line."""
    text = one_action("      - kind: throttle_route\n        mode: auto\n        params:\n"
                      "          rate: -5\n")  # fmt: skip
    assert problems_of(text) == [
        "rb.yaml:9: rules[0].actions[0].params.rate: Input should be greater than 0"
    ]


def test_missing_required_param_points_at_the_action() -> None:
    """A required param (shed fraction) missing with no params block is still reported."""
    assert problems_of(one_action("      - kind: shed_load\n        mode: auto\n")) == [
        "rb.yaml:6: rules[0].actions[0].params.fraction: Field required"
    ]


def test_duplicate_rule_name_points_at_the_second_one() -> None:
    """A repeated rule name is reported on the second rule's name line."""
    text = (
        "version: 1\nrules:\n  - name: same\n    match: {}\n"
        "  - name: other\n    match: {}\n  - name: same\n    match: {}\n"
    )
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("rb.yaml:7: rules[2].name: duplicate rule name 'same'")
    assert "line 3" in problems[0]


def test_duplicate_yaml_key_is_an_error() -> None:
    """A key given twice in one mapping is refused instead of silently keeping the last."""
    text = "version: 1\nrules:\n  - name: r\n    match: {}\n    stop: true\n    stop: false\n"
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("rb.yaml:6: rules[0].stop: duplicate key (first on line 5)")


def test_yaml_syntax_error_reports_the_mark_line() -> None:
    """A YAML syntax error becomes a RunbookError at the line the parser stopped on."""
    text = "version: 1\nrules:\n  - name: r\n    match: {kinds: [error_burst}\n"
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("rb.yaml:4: (yaml): ")


def test_wrong_version_is_a_clear_error() -> None:
    """Only version 1 is read; another version names itself and the supported one."""
    assert problems_of("rules: []\nversion: 2\n") == [
        "rb.yaml:2: version: unsupported runbook version 2; this Stanch reads version 1"
    ]


def test_missing_version_is_an_error() -> None:
    """The version is required, so a future format is never misread as this one."""
    assert problems_of("rules: []\n") == ["rb.yaml:1: version: Field required"]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "null\n"])
def test_empty_file_is_a_clear_error(text: str) -> None:
    """A file with no content says it is empty, at line 1."""
    assert problems_of(text) == ["rb.yaml:1: (root): empty runbook; expected version and rules"]


@pytest.mark.parametrize(
    ("text", "line", "kind"), [("- a\n", 1, "list"), ("\n\njust text\n", 3, "str")]
)
def test_non_mapping_top_level_is_a_clear_error(text: str, line: int, kind: str) -> None:
    """The top level must be a mapping; the error says what was found, on its line."""
    assert problems_of(text) == [
        f"rb.yaml:{line}: (root): expected a mapping with version and rules, not a {kind}"
    ]


def test_oversized_text_is_refused() -> None:
    """More than 1 MiB is refused before parsing."""
    text = "version: 1\nrules: []\n" + "#" * MAX_RUNBOOK_BYTES
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("rb.yaml:1: (file): runbook is larger than")


def test_oversized_multibyte_text_is_refused() -> None:
    """The limit counts UTF-8 bytes, not characters."""
    text = "version: 1\nrules: []\n#" + "é" * (MAX_RUNBOOK_BYTES // 2)
    assert len(text) < MAX_RUNBOOK_BYTES
    assert problems_of(text)[0].startswith("rb.yaml:1: (file): runbook is larger than")


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """load_runbook refuses a file over 1 MiB, naming the file."""
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\nrules: []\n" + "#" * MAX_RUNBOOK_BYTES)
    with pytest.raises(RunbookError) as info:
        load_runbook(path)
    assert info.value.problems[0].startswith(f"{path}:1: (file): runbook is larger than")


def test_alias_bomb_is_refused() -> None:
    """Aliases that expand to a huge document are refused before building any objects."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    problems = problems_of("\n".join(lines))
    assert len(problems) == 1
    assert "nodes once aliases are expanded" in problems[0]


@pytest.mark.parametrize("text", ["a: " + "[" * 5000, "a: &a [*a]", "a: " + "[" * 60 + "]" * 60])
def test_deep_or_recursive_nesting_is_refused(text: str) -> None:
    """Deep nesting and self-referencing aliases are refused, not a crash."""
    assert "nested" in problems_of(text)[0]


def test_unsafe_tags_are_refused() -> None:
    """Only the safe loader is used, so Python object tags are an error, not code."""
    problems = problems_of("version: 1\nrules: !!python/object/apply:os.system [echo]\n")
    assert problems[0].startswith("rb.yaml:2: (yaml): ")


def test_multiple_problems_are_reported_together_in_line_order() -> None:
    """Every problem in the file is listed at once, sorted by line."""
    text = """\
version: 1
colour: blue
rules:
  - name: Bad Name
    match:
      kinds: [error_burst, meltdown]
      min_severity: SEV9
    actions:
      - kind: circuit_break
        mode: yolo
        params: {open_for: forever}
      - kind: block_client
        mode: auto
        target: ""
  - name: ok
    match: {}
    stop: "yes"
"""
    problems = problems_of(text)
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == [2, 4, 6, 7, 10, 11, 14, 17]
    assert problems[0] == (
        "rb.yaml:2: colour: unknown field; expected one of: defaults, rules, version"
    )
    assert problems[2].startswith("rb.yaml:6: rules[0].match.kinds[1]: ")
    assert problems[5].startswith("rb.yaml:11: rules[0].actions[0].params.open_for: ")


def test_load_runbook_reads_a_file_and_names_it(tmp_path: Path) -> None:
    """load_runbook parses a file and uses its path as the source in values and errors."""
    path = tmp_path / "shop.yaml"
    path.write_text(VALID)
    assert load_runbook(path).source == str(path)
    path.write_text("version: 1\nrules:\n  - name: r\n")
    with pytest.raises(RunbookError) as info:
        load_runbook(str(path))
    assert info.value.problems == [f"{path}:3: rules[0].match: Field required"]


def test_unreadable_or_non_utf8_file_is_a_runbook_error(tmp_path: Path) -> None:
    """A missing file or one that is not UTF-8 is reported like any other problem."""
    with pytest.raises(RunbookError, match=r"missing\.yaml:1: \(file\): cannot read"):
        load_runbook(tmp_path / "missing.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\nrules: []\n")
    with pytest.raises(RunbookError, match=r"latin1\.yaml:2: \(file\): not valid UTF-8"):
        load_runbook(path)


# --------------------------------------------------------------------------- properties


def _load(text: str) -> Runbook | RunbookError:
    """The loaded runbook or the RunbookError; any other exception propagates and fails."""
    try:
        return load_runbook_text(text)
    except RunbookError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_gives_a_runbook_or_a_runbook_error(text: str) -> None:
    """No input makes the loader raise anything but RunbookError."""
    outcome = _load(text)
    if isinstance(outcome, RunbookError):
        assert outcome.problems
        assert all(p.startswith("<runbook>:") for p in outcome.problems)


_KEYS = st.sampled_from(
    ["version", "rules", "defaults", "ttl", "verify_within", "name", "match", "actions",
     "kind", "mode", "params", "rate", "kinds", "labels", "stop", "target", "fraction"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
    st.sampled_from(["auto", "approve", "30s", "circuit_break", "shed_load", "SEV2", "r"]),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=4), st.sampled_from([1, 1, 2, "1"]))
def test_structured_junk_gives_a_runbook_or_located_problems(
    doc: dict[str, Any], version: object
) -> None:
    """Near-miss runbooks never crash, and every problem has a positive line number."""
    doc = {"version": version, **doc}
    text = yaml.safe_dump(doc, sort_keys=False)
    outcome = _load(text)
    if isinstance(outcome, RunbookError):
        for problem in outcome.problems:
            assert problem.startswith("<runbook>:")
            line = int(problem.split(":")[1])
            assert 1 <= line <= text.count("\n") + 1
