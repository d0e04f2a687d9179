"""The pieces of ``stanch.remote`` that need no server: text made safe for a terminal, the
URL checks, and the nesting guard on answers."""

from __future__ import annotations

import pytest

from stanch.remote import RemoteError, _deeper_than, connect, printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, [markup] and :emoji: stay", "plain text, [markup] and :emoji: stay"),
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
        ("\x9b31mred", "\\x9b31mred"),  # C1 CSI: one byte, same effect as ESC [
        ("bell\x07 nul\x00 del\x7f", "bell\\x07 nul\\x00 del\\x7f"),
        ("two\nlines\r", "two\\x0alines\\x0d"),
        ("\u202eevil\u202c", "\\u202eevil\\u202c"),  # bidi override: reorders what is seen
        ("sep\u2028arator", "sep\\u2028arator"),
        ("ends with \\", "ends with \\"),
        ("naïve café ⚠ 日本", "naïve café ⚠ 日本"),
    ],
)
def test_printable_makes_control_characters_visible(text: str, shown: str) -> None:
    assert printable(text) == shown


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://x", "http://x"),
        ("https://stanch.example.com/", "https://stanch.example.com"),
        ("http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://proxy.internal/stanch", "http://proxy.internal/stanch"),
        ("http://bücher.example", "http://bücher.example"),
        ("http://compose_service:8080", "http://compose_service:8080"),
    ],
)
def test_urls_kept(url: str, kept: str) -> None:
    assert connect(url, "stanch_a_b").url == kept


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:abc",
        "http://[::1",
        "http://a..b",
        "http://" + "a" * 64 + ".example",
        "http://" + "a." * 127 + "com",
        "http://exa mple.com",
        "http://",
        "https://:443",
        "ftp://x",
        "127.0.0.1:8080",
        "http://x:0",
        "http://x:70000",
        "http://x/?q=1",
        "http://x/#top",
    ],
)
def test_urls_refused_with_exit_status_2(url: str) -> None:
    with pytest.raises(RemoteError, match=r"^--url .*expected http://HOST:PORT") as caught:
        connect(url, "stanch_a_b")
    assert caught.value.code == 2


def test_nesting_is_measured_without_recursion() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert _deeper_than(deep, 32)
    assert not _deeper_than([{"a": [{"b": []}]}], 5)  # list, dict, list, dict, list
    assert _deeper_than([{"a": [{"b": []}]}], 4)
    assert not _deeper_than("text", 0)
