"""Durations as people write them in runbooks and configuration: "30s", "10m", "1h30m".

>>> parse_duration("1h30m"), parse_duration(90)
(5400.0, 90.0)
"""

from __future__ import annotations

import math
import re
from typing import Final

_UNIT_S: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_UNIT_ORDER: Final = ("h", "m", "s", "ms")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
DURATION_HINT: Final = "expected a duration like '30s', '10m', '1h30m' or a number of seconds"


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text`` ("30s", "10m", "1h30m", "500ms", or a number of seconds).

    Units must come largest first and at most once each, so "1m1h" (likely a typo) is refused.
    Raises ValueError, saying what was expected, for anything else, and for durations that
    are not positive and finite: a zero TTL or an infinite breaker opening is never meant.
    """
    if isinstance(text, bool):
        raise ValueError(f"{DURATION_HINT}, got {text!r}")
    if isinstance(text, int | float):
        try:
            seconds = float(text)
        except OverflowError:
            raise ValueError(f"duration {text} is too large") from None
    elif isinstance(text, str):
        seconds = _parse_duration_text(text.strip())
    else:
        raise ValueError(f"{DURATION_HINT}, got {type(text).__name__}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive and finite, got {short(text)}")
    return seconds


def _parse_duration_text(text: str) -> float:
    if len(text) > 40:  # no real duration is this long; keeps the regexes cheap
        raise ValueError(f"{DURATION_HINT}, got {short(text)}")
    if _NUMBER.fullmatch(text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{DURATION_HINT}, got {text!r}")
    seconds, last = 0.0, -1
    for number, unit in _DURATION_PART.findall(text):
        rank = _UNIT_ORDER.index(unit)
        if rank <= last:
            raise ValueError(f"units in {text!r} must come largest first, each once")
        seconds, last = seconds + float(number) * _UNIT_S[unit], rank
    return seconds


def short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def duration_field(value: object) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError(f"{DURATION_HINT}, got {type(value).__name__}")
    return parse_duration(value)
