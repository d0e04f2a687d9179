"""The raw-body checks: what they refuse, and that honest JSON always passes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stanch.server.jsonguard import problem


def test_refusals_name_the_problem() -> None:
    """NaN, lone surrogates, NUL, depth and bad UTF-8 are each named."""
    assert problem(b"[NaN]") == "JSON does not allow NaN or Infinity"
    assert "surrogate" in (problem(b'["\\udc00"]') or "")
    assert "surrogate" in (problem(b'["\\ud800x"]') or "")
    assert "NUL" in (problem(b'["a\\u0000"]') or "")
    assert "deeper than 3" in (problem(b"[[[[1]]]]", max_depth=3) or "")
    assert "UTF-8" in (problem(b'["\xed\xa0\x80"]') or "")


def test_lookalikes_inside_strings_pass() -> None:
    """Text that merely mentions NaN, brackets or escaped backslashes is fine."""
    assert problem(b'{"a": "NaN [[[[[[ \\\\u0000", "b": "\\ud83d\\ude00"}', max_depth=2) is None
    assert problem(b"[[[1]]]", max_depth=3) is None
    assert problem(b"[1, 2") is None  # a syntax error: the parser says where


TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(TEXT, c, max_size=4),
    max_leaves=30,
)


@given(JSON, st.booleans())
def test_honest_json_is_never_refused(value: Any, ascii_only: bool) -> None:
    """Anything json.dumps writes from finite, NUL-free, surrogate-free data passes."""
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert problem(raw, max_depth=64) is None
