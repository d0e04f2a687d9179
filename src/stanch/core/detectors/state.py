"""Detector state to and from plain JSON, so a restart does not forget what "normal" looks like.

A cold detector needs its warm-up again, and worse, learns whatever is happening during it as
the baseline: restart mid-flood and the flood becomes normal. Each stateful class names its
learned fields in ``STATE``; configuration comes from the constructor and is not saved.
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import Any


def snapshot(obj: Any) -> dict[str, Any]:
    """The learned state of ``obj`` (fields listed in its ``STATE``), JSON-safe."""
    out: dict[str, Any] = {}
    for name in type(obj).STATE:
        out[name] = _encode(getattr(obj, name))
    return out


def restore(obj: Any, data: dict[str, Any]) -> None:
    """Load a :func:`snapshot` into an object built with the same configuration."""
    for name in type(obj).STATE:
        if name not in data:
            continue
        current = getattr(obj, name)
        value = data[name]
        if isinstance(current, deque):
            current.clear()
            current.extend(value[-current.maxlen :] if current.maxlen else value)
        elif isinstance(current, array):  # packed floats stay packed
            setattr(obj, name, array(current.typecode, value))
        elif hasattr(type(current), "STATE"):
            restore(current, value)
        else:
            setattr(obj, name, value)


def _encode(value: Any) -> Any:
    if isinstance(value, deque | array):
        return list(value)
    if hasattr(type(value), "STATE"):
        return snapshot(value)
    return value
