"""The HTTP contract with receivers: the body's signature, and which answers mean "retry".

With a target's ``secret`` set, the body is signed: ``X-Stanch-Signature: sha256=<hex
HMAC-SHA256 of the body>``; receivers check it with :func:`verify_signature`. Transport errors,
5xx, 408 and 429 are retried; a ``Retry-After`` on 429/503 says how long to wait
(:func:`parse_retry_after`). Kept apart from the notifier so a receiver (or a test) can use
the same functions without starting any thread.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
from datetime import UTC

SIGNATURE_HEADER = "X-Stanch-Signature"
RETRY_STATUSES = frozenset({408, 429})  # and every 5xx
RETRY_AFTER_STATUSES = frozenset({429, 503})


def sign(secret: str, body: bytes) -> str:
    """The ``X-Stanch-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: does ``header`` sign exactly ``body`` with ``secret``? Constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is True too
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no further word (RFC 5322 3.3)
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
