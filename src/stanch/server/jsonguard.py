"""Cheap checks on a raw JSON body, before any parser builds objects from it.

Python's ``json`` module happily decodes things the rest of Stanch cannot store or answer
with: ``NaN`` and ``Infinity``, lone UTF-16 surrogates (``"\\ud800"``), NUL characters (which
PostgreSQL refuses in text), and nesting deep enough to exhaust the recursion limit somewhere
downstream. :func:`problem` finds each of these with a handful of C-speed passes over the
bytes (regular expressions, ``bytes.translate``), so a hostile body is refused with a 400
saying why, and an honest one costs a few milliseconds per megabyte.

Syntax errors are left to the JSON parser, which reports them with a position.
"""

from __future__ import annotations

import re
from typing import Final

DEFAULT_MAX_DEPTH: Final = 32

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
_NON_FINITE = re.compile(rb"NaN|Infinity")
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def problem(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> str | None:
    """Why ``body`` must be refused, or None if the JSON parser may have it."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"body is not valid UTF-8 (byte {exc.start})"
    if _SUSPECT_ESCAPE.search(body):
        found = _escape_problem(body)
        if found:
            return found
    stripped = _STRING.sub(b'""', body)
    if _NON_FINITE.search(stripped):
        return "JSON does not allow NaN or Infinity"
    if _too_deep(stripped.translate(None, _NOT_BRACKETS), max_depth):
        return f"JSON nested deeper than {max_depth} levels"
    return None


def _escape_problem(body: bytes) -> str | None:
    pending_high: int | None = None  # end offset of a high surrogate waiting for its low half
    for match in _ESCAPE.finditer(body):
        hex_digits = match.group(1)
        code = int(hex_digits, 16) if hex_digits else -1
        if pending_high is not None:
            if match.start() == pending_high and 0xDC00 <= code <= 0xDFFF:
                pending_high = None
                continue
            return "JSON string holds a lone UTF-16 surrogate"
        if code == 0:
            return "JSON strings must not contain NUL characters"
        if 0xD800 <= code <= 0xDBFF:
            pending_high = match.end()
        elif 0xDC00 <= code <= 0xDFFF:
            return "JSON string holds a lone UTF-16 surrogate"
    if pending_high is not None:
        return "JSON string holds a lone UTF-16 surrogate"
    return None


def _too_deep(brackets: bytes, max_depth: int) -> bool:
    """Peel the innermost ``[]``/``{}`` pairs one level per pass; anything left after
    ``max_depth`` passes that still has pairs is deeper than allowed. (Unbalanced leftovers
    are a syntax error, which the parser reports better.)"""
    for _ in range(max_depth):
        if not brackets:
            return False
        peeled = _INNERMOST.sub(b"", brackets)
        if peeled == brackets:
            return False
        brackets = peeled
    return bool(_INNERMOST.search(brackets))
