"""Noise-control rules in the core: matchers (negative ones too), what a new silence or window
must satisfy, ending rules, and the stored form (old and new)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanch.core.alerts import AlertKind
from stanch.core.errors import IllegalTransition, NotFound, ValidationError
from stanch.core.noise import (
    DAY_S,
    MAX_ENDED,
    MAX_MATCHERS,
    MAX_RULES,
    MaintenanceWindow,
    Matcher,
    NoiseControl,
    Silence,
    check_new_silence,
    check_new_window,
    parse_matcher,
    resolve_span,
    silence_series_warnings,
    window_series_warnings,
)

from .factories import make_alert

NOW = 1_800_000_000.0  # a Friday, 08:00 UTC
CHECKOUT = make_alert(route="POST /checkout", clients=("c1", "c2"), labels={"team": "pay"})


def silence(*matchers: Matcher, starts: float = NOW, ends: float = NOW + 3600) -> Silence:
    return Silence("S-1", matchers, starts, ends, "erin", "load test")


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (Matcher("route", "POST /*"), True),
        (Matcher("route", "POST /*", equal=False), False),
        (Matcher("route", "GET /*", equal=False), True),
        (Matcher("kind", "error_*"), True),
        (Matcher("client", "c2"), True),
        (Matcher("client", "c[12]", equal=False), False),  # some client matches: not "!="
        (Matcher("client", "scraper-*", equal=False), True),
        (Matcher("label:team", "pay"), True),
        (Matcher("label:team", "pay", equal=False), False),
        (Matcher("label:owner", "*"), False),  # absent label: no positive match
        (Matcher("label:owner", "x", equal=False), True),  # ... and a negative one matches
    ],
)
def test_matchers_equal_and_not(matcher: Matcher, expected: bool) -> None:
    assert matcher.matches(CHECKOUT) is expected


def test_a_silence_needs_every_matcher() -> None:
    """Matchers are ANDed: a negative one carves an exception out of a positive one."""
    all_but_search = silence(Matcher("service", "shop"), Matcher("route", "GET /search", False))
    assert all_but_search.matches(CHECKOUT)
    assert not all_but_search.matches(make_alert(route="GET /search"))
    assert not all_but_search.matches(make_alert(service="other"))


def test_unknown_matcher_fields_are_refused() -> None:
    for field in ("team", "Service", ""):
        with pytest.raises(ValidationError, match="must be one of"):
            Matcher(field, "x")
    with pytest.raises(ValidationError, match="names its label"):
        check_new_silence(silence(Matcher("service", "shop"), Matcher("label:", "x")), NOW)


@pytest.mark.parametrize(
    "matchers",
    [
        (Matcher("route", "GET /health", equal=False),),
        (Matcher("service", "*"),),
        (Matcher("service", "**"), Matcher("route", "x", equal=False)),
        (Matcher("service", "?*"),),
        (Matcher("route", "[!x]*"), Matcher("kind", "*?")),
    ],
)
def test_a_silence_matching_everything_is_refused(matchers: tuple[Matcher, ...]) -> None:
    """Without a positive glob that has a literal character, a silence would mute (nearly)
    every alert: refused, as Alertmanager refuses a silence whose matchers all match ""."""
    with pytest.raises(ValidationError, match="at least one positive matcher"):
        check_new_silence(silence(*matchers), NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"matchers": (Matcher("route", "a"),) * (MAX_MATCHERS + 1)}, "at most 20 matchers"),
        ({"matchers": (Matcher("route", "a" * 201),)}, "longer than 200"),
        ({"ends": NOW - 1, "starts": NOW - 10}, "end in the future"),
        ({"ends": NOW + 366 * DAY_S}, "at most 365 days"),
        ({"starts": NOW + 400 * DAY_S, "ends": NOW + 401 * DAY_S}, "days ahead"),
    ],
)
def test_oversized_or_stale_silences_are_refused(change: dict[str, Any], message: str) -> None:
    matchers = change.pop("matchers", (Matcher("service", "shop"),))
    with pytest.raises(ValidationError, match=message):
        check_new_silence(silence(*matchers, **change), NOW)


def test_a_narrow_silence_passes() -> None:
    check_new_silence(silence(Matcher("service", "shop"), Matcher("kind", "*", False)), NOW)


@given(
    field=st.sampled_from(["service", "route", "kind", "client", "source", "label:team"]),
    pattern=st.text(min_size=0, max_size=30).map(str.strip),
    equal=st.booleans(),
)
def test_parse_matcher_reads_what_str_writes(field: str, pattern: str, equal: bool) -> None:
    matcher = Matcher(field, pattern, equal)
    assert parse_matcher(str(matcher)) == matcher
    assert parse_matcher(f"  {field} {matcher.op}  {pattern} ") == matcher


@given(st.text(max_size=40))
def test_parse_matcher_never_crashes(text: str) -> None:
    """Anything typed into the dashboard is a matcher or a ValidationError naming the problem."""
    try:
        matcher = parse_matcher(text)
    except ValidationError as exc:
        message = str(exc)
    else:
        message = str(matcher)
    assert message


def test_resolve_span() -> None:
    assert resolve_span(NOW, duration_s=60) == (NOW, NOW + 60)
    assert resolve_span(NOW, NOW - 100, NOW + 60) == (NOW, NOW + 60)  # past start: now
    assert resolve_span(NOW, NOW + 10, duration_s=60) == (NOW + 10, NOW + 70)
    for kwargs in ({}, {"ends_at": NOW + 5, "duration_s": 5.0}):
        with pytest.raises(ValidationError, match="either ends_at or duration"):
            resolve_span(NOW, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="future"):
        resolve_span(NOW, ends_at=NOW)


def test_maintenance_windows_checked_and_described() -> None:
    weekly = MaintenanceWindow("M-1", "shop", weekdays=(4, 0), start_minute=480, end_minute=540)
    assert weekly.schedule() == "Mon, Fri 08:00-09:00 UTC"
    assert weekly.status(NOW) == "active"  # Friday 08:00
    assert weekly.status(NOW + 3600) == "pending"  # between slots: never "expired"
    check_new_window(weekly, NOW)
    with pytest.raises(ValidationError, match="another minute"):
        check_new_window(MaintenanceWindow("M-2", "shop", weekdays=(1,)), NOW)
    long = MaintenanceWindow("M-3", "shop", starts_at=NOW, ends_at=NOW + 400 * DAY_S)
    with pytest.raises(ValidationError, match="at most 365 days"):
        check_new_window(long, NOW)
    one_off = MaintenanceWindow("M-4", "shop", starts_at=NOW, ends_at=NOW + 60)
    assert (one_off.status(NOW - 1), one_off.status(NOW), one_off.status(NOW + 60)) == (
        "pending",
        "active",
        "expired",
    )


def test_suppressions_say_what_held_the_alert_back() -> None:
    control = NoiseControl()
    control.add(silence(Matcher("route", "POST /*")))
    found = control.check(CHECKOUT, NOW)
    assert found is not None
    assert (found.rule, found.cause, found.kind, found.service, found.route) == (
        "S-1",
        "silence",
        AlertKind.ERROR_BURST.value,
        "shop",
        "POST /checkout",
    )
    assert found.reason == "silenced by S-1 (erin: load test)"
    assert control.check(CHECKOUT, NOW + 3600) is None


def test_ended_rules_are_kept_bounded_and_cannot_end_twice() -> None:
    control = NoiseControl()
    control.add(silence(Matcher("service", "shop")))
    ended = control.end_silence("S-1", NOW + 5, "erin")
    assert (ended.at, ended.by, control.silences) == (NOW + 5, "erin", {})
    with pytest.raises(IllegalTransition, match="ended already"):
        control.end_silence("S-1", NOW + 6, "erin")
    with pytest.raises(NotFound):
        control.end_window("S-1", NOW + 6, "erin")  # a silence is not a window
    for n in range(MAX_ENDED + 5):
        control.add(Silence(f"S-x{n}", (Matcher("route", "a"),), NOW, NOW + 1, "", ""))
    assert len(control.expire(NOW + 1)) == MAX_ENDED + 5
    assert len(control.ended) == MAX_ENDED
    assert control.ended[-1].by == ""  # ran out
    assert control.ended[-1].at == NOW + 1


def test_rules_in_force_are_bounded() -> None:
    control = NoiseControl()
    for n in range(MAX_RULES):
        control.add(Silence(f"S-{n}", (Matcher("route", "a"),), NOW, NOW + 60, "", ""))
    with pytest.raises(IllegalTransition, match="expire some first"):
        control.add(Silence("S-one-more", (Matcher("route", "a"),), NOW, NOW + 60, "", ""))
    with pytest.raises(IllegalTransition, match="exists already"):
        control.add(Silence("S-0", (Matcher("route", "a"),), NOW, NOW + 60, "", ""))


def test_the_stored_form_round_trips_and_old_documents_still_load() -> None:
    control = NoiseControl()
    control.add(silence(Matcher("service", "shop"), Matcher("route", "GET /health", False)))
    control.add(
        MaintenanceWindow("M-1", "shop", ("GET /*",), weekdays=(2,), end_minute=60, created_by="o")
    )
    control.add(MaintenanceWindow("M-2", "shop", starts_at=NOW, ends_at=NOW + 60))
    control.end_window("M-2", NOW + 1, "erin")
    again = NoiseControl.from_dict(control.to_dict())
    assert again.silences == control.silences
    assert again.windows == control.windows
    assert again.ended == control.ended

    # What earlier versions saved: [field, pattern] matchers, no "ended", no created_by, and
    # a match-all silence new ones may no longer have (it loads: it was accepted then).
    old = {
        "silences": [
            {
                "id": "S-0001",
                "matchers": [["service", "*"]],
                "starts_at": NOW,
                "ends_at": NOW + 60,
                "created_by": "ops",
                "comment": "",
            }
        ],
        "windows": [{"id": "M-1", "service": "shop", "starts_at": NOW, "ends_at": NOW + 60}],
    }
    loaded = NoiseControl.from_dict(old)
    assert loaded.silences["S-0001"].matchers == (Matcher("service", "*"),)
    assert loaded.windows["M-1"].created_by == ""
    assert loaded.ended == []
    assert loaded.to_dict()["silences"][0]["matchers"] == [["service", "*"]]


@pytest.mark.parametrize(
    ("matcher", "message"),
    [
        (Matcher("kind", "error_burts"), "kind 'error_burts' matches no alert kind"),
        (Matcher("kind", "x*", False), "the kinds are: traffic_spike, traffic_drop, error_burst"),
        (Matcher("route", "/checkout"), "route names include the method"),
        (Matcher("route", "/api/*", False), "'* /api/\\*' for any method"),
    ],
)
def test_matchers_that_can_never_match_are_refused(matcher: Matcher, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_new_silence(silence(Matcher("service", "shop"), matcher), NOW)


@pytest.mark.parametrize(
    "matcher",
    [
        Matcher("kind", "error_burst"),
        Matcher("kind", "traffic_*"),
        Matcher("route", "POST /checkout"),
        Matcher("route", "* /checkout"),
        Matcher("route", "GET /api/*"),
        Matcher("route", "*"),
    ],
)
def test_real_kinds_and_route_names_pass(matcher: Matcher) -> None:
    check_new_silence(silence(Matcher("service", "shop"), matcher), NOW)


def test_a_window_route_without_its_method_is_refused() -> None:
    window = MaintenanceWindow("", "shop", ("/search",), starts_at=NOW, ends_at=NOW + 60)
    with pytest.raises(ValidationError, match="route names include the method"):
        check_new_window(window, NOW)


SERIES = [("shop", "*"), ("shop", "POST /checkout"), ("shop", "GET /search")]


@pytest.mark.parametrize(
    ("matchers", "warned"),
    [
        ((Matcher("route", "POST /checkout"),), False),
        ((Matcher("route", "* /checkout"),), False),
        ((Matcher("service", "shop"),), False),  # the service-wide series
        ((Matcher("service", "shop"), Matcher("route", "GET /search", False)), False),
        ((Matcher("kind", "error_burst"),), False),  # neither service nor route: not judged
        ((Matcher("route", "GET /checkout"),), True),
        ((Matcher("service", "billing"),), True),
        ((Matcher("service", "shop"), Matcher("route", "DELETE *")), True),
        ((Matcher("source", "alertmanager"), Matcher("service", "billing")), False),
    ],
)
def test_silence_series_warnings(matchers: tuple[Matcher, ...], warned: bool) -> None:
    assert bool(silence_series_warnings(silence(*matchers), SERIES)) is warned


def test_silence_series_warnings_say_how_series_are_named() -> None:
    (warning,) = silence_series_warnings(silence(Matcher("route", "POST /pay")), SERIES)
    assert "route=POST /pay matches no series seen so far" in warning
    assert "service=shop route=GET /search" in warning
    (empty,) = silence_series_warnings(silence(Matcher("route", "POST /pay")), [])
    assert "the server has seen no traffic yet" in empty


def test_window_series_warnings() -> None:
    def window(service: str, *routes: str) -> MaintenanceWindow:
        return MaintenanceWindow("", service, routes, starts_at=NOW, ends_at=NOW + 60)

    assert window_series_warnings(window("shop"), SERIES) == []
    assert window_series_warnings(window("shop", "* /checkout", "GET /s*"), SERIES) == []
    (unseen,) = window_series_warnings(window("billing"), SERIES)
    assert "service 'billing' matches no series seen so far" in unseen
    (route,) = window_series_warnings(window("shop", "POST /checkout", "GET /nope"), SERIES)
    assert "route 'GET /nope' of service 'shop'" in route
