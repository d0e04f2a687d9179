"""Reading durations, times, matchers and weekly schedules typed for silences and windows."""

from __future__ import annotations

import pytest

from stanch.noise_input import parse_duration_arg, parse_time_arg, parse_weekly, split_matcher


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800.0), ("2h", 7200.0), ("1d", 86400.0), ("1h30m", 5400.0), ("2w", 1209600.0),
     ("1.5h", 5400.0), (" 45S ", 45.0), ("1d2h3m4s", 93784.0)],
)  # fmt: skip
def test_durations_in_every_unit(text: str, seconds: float) -> None:
    assert parse_duration_arg(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "2hours", "1m1h", "1h1h", "500ms", "-1h", "0s", "h"])
def test_durations_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--for"):
        parse_duration_arg(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1800000000", 1_800_000_000.0),
        ("1800000000.5", 1_800_000_000.5),
        ("2027-01-15T08:00:00", 1_800_000_000.0),  # no offset: UTC
        ("2027-01-15 08:00:00Z", 1_800_000_000.0),
        ("2027-01-15T09:00:00+01:00", 1_800_000_000.0),
    ],
)
def test_times_as_iso_or_unix_seconds(text: str, seconds: float) -> None:
    assert parse_time_arg(text, "--until") == seconds


@pytest.mark.parametrize("text", ["tomorrow", "2027-13-01", "in 2h", "", "1e9", "inf"])
def test_times_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"--until .*ISO-8601"):
        parse_time_arg(text, "--until")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("route=/checkout", ("route", "=", "/checkout")),
        ("service!=billing", ("service", "!=", "billing")),
        ("route = POST /pay", ("route", "=", "POST /pay")),
        ("label:team=a=b", ("label:team", "=", "a=b")),
        ("route=", ("route", "=", "")),  # an empty glob is the server's to refuse
    ],
)
def test_matchers_split_like_the_server_reads_them(text: str, parts: tuple[str, str, str]) -> None:
    assert split_matcher(text) == parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon 02:00-04:00", ([0], 120, 240)),
        ("mon,THU 2:00 - 4:30 UTC", ([0, 3], 120, 270)),
        ("Mon-Fri 22:00-02:00", ([0, 1, 2, 3, 4], 1320, 120)),
        ("Sat-Mon 00:00-06:00", ([0, 5, 6], 0, 360)),
        ("daily 23:00-23:30", ([0, 1, 2, 3, 4, 5, 6], 1380, 1410)),
        ("Tuesday, Wed 12:00-13:00", ([1, 2], 720, 780)),
    ],
)
def test_weekly_schedules(text: str, expected: tuple[list[int], int, int]) -> None:
    assert parse_weekly(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Mon", "expected days and UTC hours"),
        ("Mo 02:00-04:00", "'Mo' is not a weekday"),
        ("Mon 24:00-02:00", "24:00 is not a time of day"),
        ("Mon 02:60-03:00", "02:60 is not a time of day"),
        ("Mon 02:00-02:00", "must end at another time"),
    ],
)
def test_weekly_schedules_refused(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_weekly(text)
