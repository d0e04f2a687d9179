"""Templates and the filters they use: times, durations, numbers, Markdown.

Autoescaping is on for every template, and nothing user-controlled is ever marked safe: the
only ``Markup`` built here is Markdown rendered with raw HTML disabled (markdown-it escapes
it) and links restricted to safe schemes. Times are the engine's (UTC), relative to the
engine's ``now``, so a replayed or simulated incident reads the same as a live one.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])


def markdown(text: str, demote: int = 0) -> Markup:
    """Markdown as HTML; raw HTML in ``text`` comes out as text.

    Table alignment becomes a class (``align-right``) instead of a ``style`` attribute, which
    the Content-Security-Policy would refuse; headings go ``demote`` levels down, so a
    document shown inside a page does not compete with the page's own headings."""
    tokens = _markdown.parse(text)
    for token in tokens:
        if demote and token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + demote)}"
        style = token.attrGet("style")
        if isinstance(style, str):
            del token.attrs["style"]
            token.attrSet("class", "align-" + style.rpartition(":")[2].strip())
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    return Markup(html)  # safe: html is off, markdown-it escapes every tag in ``text``


def clock(ts: float | None, now: float | None = None) -> str:
    """``09:08:12`` today (engine time, UTC), ``Nov 24 09:08`` on another day."""
    if ts is None or not math.isfinite(ts):
        return "—"
    at = datetime.fromtimestamp(ts, UTC)
    if now is not None and datetime.fromtimestamp(now, UTC).date() == at.date():
        return at.strftime("%H:%M:%S")
    return at.strftime("%b %d %H:%M")


def iso(ts: float | None) -> str:
    if ts is None or not math.isfinite(ts):
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2 d``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def percent(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if 0 < value < 0.001:
        return "<0.1%"
    return f"{value * 100:.{digits}f}%"


def millis(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 1000:.0f} ms"


def per_second(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1f}/s" if value < 100 else f"{value:.0f}/s"


def count(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{int(value):,}".replace(",", "\u202f")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        clock=clock,
        iso=iso,
        duration=duration,
        percent=percent,
        millis=millis,
        per_second=per_second,
        count=count,
        markdown=markdown,
    )
    versions = _static_versions()
    env.globals["static"] = lambda name: f"/static/{name}?v={versions.get(name, '0')}"
    return env


def _static_versions() -> dict[str, str]:
    """A content hash per static file, so a new release is never served from a stale cache."""
    out: dict[str, str] = {}
    for path in STATIC.rglob("*"):
        if path.is_file():
            name = path.relative_to(STATIC).as_posix()
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return out


def render(env: Environment, template: str, **values: Any) -> str:
    return env.get_template(template).render(**values)
