"""What the sources share: their error, time parsing, severity words, bounded strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from pydantic import ValidationError as PydanticValidationError

from stanch.core.errors import ValidationError
from stanch.core.severity import Severity

MAX_ID: Final = 200  # services and actors land in 200-character columns
MAX_TEXT: Final = 1000  # explanations and summaries on the timeline
MAX_ROUTE: Final = 500
LOOKBACK_S: Final = 7 * 24 * 3600.0  # older start times are clamped: onset stays meaningful

_SEVERITY: Final = {
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "error": Severity.SEV2,
    "high": Severity.SEV2,
    "warning": Severity.SEV3,
    "warn": Severity.SEV3,
    "medium": Severity.SEV3,
    "info": Severity.SEV4,
    "low": Severity.SEV4,
    "none": Severity.SEV4,
}
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:?\d{2})?"
)
TIME_PATTERN: Final = (
    r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}:?\d{2})?\s*$"
)
_ROUTE = re.compile(r"[A-Z]{3,7} /\S*")


class PayloadError(ValidationError):
    """A payload a source refuses; ``problems`` lists each as ``field.path: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems or ["invalid payload"]
        super().__init__("; ".join(self.problems))

    @classmethod
    def from_pydantic(cls, exc: PydanticValidationError) -> PayloadError:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in err["loc"]) or "(body)"
            problems.append(f"{where}: {err['msg']}")
        return cls(problems)


def severity_of(word: str | None, default: Severity = Severity.SEV3) -> Severity:
    """critical → SEV1, error/high → SEV2, warning → SEV3, info → SEV4; unknown → ``default``."""
    if not word:
        return default
    return _SEVERITY.get(word.strip().lower(), default)


def parse_time(text: str, where: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 / ISO 8601 time; None for Go's zero time.

    Fractions beyond microseconds (Alertmanager sends nanoseconds) are truncated; a time
    without an offset is UTC; ``+0000`` and ``+00:00`` both work.
    """
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise PayloadError([f"{where}: not an RFC 3339 time: {clip(text, 40)!r}"])
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if int(year) <= 1:
        return None  # 0001-01-01T00:00:00Z: Go's zero time, "not set"
    tz = UTC
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        # The pattern admits any two digits; past +23:59 ``timezone`` raises ValueError (a 500).
        if hours > 23 or minutes > 59:
            raise PayloadError([f"{where}: not a valid UTC offset: {clip(text, 40)!r}"])
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise PayloadError([f"{where}: not a valid time: {clip(text, 40)!r}"]) from None


def clamp_start(ts: float | None, now: float) -> float:
    """A start time no later than ``now`` and no earlier than a week before it."""
    if ts is None:
        return now
    return min(now, max(ts, now - LOOKBACK_S))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def route_key(value: str | None) -> str | None:
    """``value`` if it is a route key (``"POST /checkout"``), else None."""
    if value and _ROUTE.fullmatch(value.strip()):
        return clip(value.strip(), MAX_ROUTE)
    return None
