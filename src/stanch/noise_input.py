"""What a person types for a silence or a maintenance window, read before any request is made.

The server decides what a rule may be (which fields a matcher names, how long a silence may
last, whether a time is in the past: its clock is the one that counts). The command line only
checks *syntax*, so that a typo such as ``--for 2hours`` fails at once, with exit status 2,
instead of as a request the server must refuse. (One exception lives in ``stanch.noise_cli``:
the end it computes from ``--starts`` and ``--for`` is refused there when it has passed.)
Each parser raises ``ValueError`` with a message that names the option and shows what was
expected.

Durations take days and weeks (``1d``, ``2w``), which people give silences but which the
server's duration syntax lacks; they are sent as seconds.

>>> parse_duration_arg("1d12h"), split_matcher("route!=GET /health")
(129600.0, ('route', '!=', 'GET /health'))
>>> parse_weekly("Mon-Fri 22:00-02:00")
([0, 1, 2, 3, 4], 1320, 120)
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Final

_DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNITS: Final = (("w", 604_800.0), ("d", 86_400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))
_NUM: Final = r"(\d{1,9}(?:\.\d{1,6})?)"
_DURATION: Final = re.compile("".join(f"(?:{_NUM}{unit})?" for unit, _ in _UNITS))
_SECONDS: Final = re.compile(r"\d{1,12}(?:\.\d{1,6})?")
_WEEKLY: Final = re.compile(
    r"(?P<days>[a-z][a-z,\- ]*?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
    r"(?:\s*utc)?",
    re.IGNORECASE,
)
DURATION_HINT: Final = "expected a duration like 30m, 2h, 1d or 1h30m"
TIME_HINT: Final = (
    "expected an ISO-8601 time (2030-06-01T14:00, UTC unless it names an offset) or Unix seconds"
)
WEEKLY_HINT: Final = 'expected days and UTC hours like "Mon-Fri 02:00-04:00" or "daily 22:00-02:00"'


def parse_duration_arg(text: str, option: str = "--for") -> float:
    """Seconds in ``30m``, ``2h``, ``1d``, ``1h30m``, ``2w``: units largest first, each once.

    A bare number is refused: ``--for 2`` could mean two hours as well as two seconds."""
    cleaned = text.strip().lower()
    match = _DURATION.fullmatch(cleaned) if cleaned else None
    if match is None:
        raise ValueError(f"{option} {text!r}: {DURATION_HINT}")
    seconds = sum(
        float(number) * unit_s
        for number, (_, unit_s) in zip(match.groups(), _UNITS, strict=True)
        if number is not None
    )
    if seconds <= 0:
        raise ValueError(f"{option} {text!r}: a duration must be longer than zero")
    return seconds


def parse_time_arg(text: str, option: str) -> float:
    """Unix seconds of an ISO-8601 time (UTC when it names no offset, as every time Stanch
    shows is UTC) or of a number of Unix seconds."""
    cleaned = text.strip()
    if _SECONDS.fullmatch(cleaned):
        return float(cleaned)
    try:
        when = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"{option} {text!r}: {TIME_HINT}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp()
    if not math.isfinite(seconds):  # pragma: no cover - datetime keeps years within 1..9999
        raise ValueError(f"{option} {text!r}: {TIME_HINT}")
    return seconds


def split_matcher(text: str) -> tuple[str, str, str]:
    """(field, op, glob) of ``field=glob`` or ``field!=glob``, as the server's matchers read.

    Which fields exist is the server's to say (its answer names them). Alertmanager's regex
    operators are refused here: the server matches globs only, and ``route=~/api.*`` taken
    as a glob starting with ``~`` would silently match nothing."""
    field, sep, pattern = text.partition("=")
    field, pattern = field.strip(), pattern.strip()
    op = "!=" if field.endswith("!") else "="
    field = field.removesuffix("!").rstrip()
    if not sep or not field:
        raise ValueError(
            f"matcher {text[:80]!r}: expected field=glob or field!=glob, "
            'e.g. "route=POST /checkout" or service!=billing (quote spaces)'
        )
    if pattern.startswith("~"):
        raise ValueError(
            f"matcher {text[:80]!r}: regular expressions (=~, !~) are not supported; "
            "the server matches globs: * any run, ? one character ('route=GET /api/*')"
        )
    return field, op, pattern


def parse_weekly(text: str) -> tuple[list[int], int, int]:
    """(weekdays, start minute, end minute) of ``"Mon,Thu 02:00-04:00"``, ``"Mon-Fri ..."``
    or ``"daily ..."``; hours are UTC, and an end before the start is the next day."""
    match = _WEEKLY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"--weekly {text!r}: {WEEKLY_HINT}")
    days: set[int] = set()
    for part in match["days"].replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if part.lower() in ("daily", "everyday"):
            days.update(range(7))
        elif dash:
            start, end = _weekday(first, text), _weekday(last, text)
            days.update(d % 7 for d in range(start, end + (7 if end < start else 0) + 1))
        else:
            days.add(_weekday(part, text))
    start, end = _minute(match["start"], text), _minute(match["end"], text)
    if start == end:
        raise ValueError(f"--weekly {text!r}: the window must end at another time than it starts")
    return sorted(days), start, end


def _weekday(name: str, text: str) -> int:
    lowered = name.lower()
    for index, day in enumerate(_DAYS):
        if len(lowered) >= 3 and day.startswith(lowered):
            return index
    raise ValueError(f"--weekly {text!r}: {name!r} is not a weekday (Mon, Tue, ... Sun)")


def _minute(hhmm: str, text: str) -> int:
    hours, _, minutes = hhmm.partition(":")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"--weekly {text!r}: {hhmm} is not a time of day (00:00 to 23:59)")
    return int(hours) * 60 + int(minutes)
