"""Silences, maintenance windows and the alerts they held back, with a responder's controls.

The page shows what noise control is doing right now (so an operator looking for a missing
page sees the silence that ate it), and lets responders add a silence or end one early.
Each form does what the ``/api/v1/silences`` endpoints do, audited as ``dashboard.*``.
"""

from __future__ import annotations

from itertools import islice
from typing import Final

from starlette.responses import Response
from starlette.routing import Route

from stanch.core.durations import parse_duration
from stanch.core.errors import ValidationError
from stanch.core.noise import (
    MAX_COMMENT,
    MAX_MATCHERS,
    MAX_PATTERN,
    Matcher,
    parse_matcher,
    resolve_span,
)
from stanch.server import noise_rules
from stanch.server.auth import Permission
from stanch.server.dashboard.web import Done, FormError, View, field, form, page

SUPPRESSED_SHOWN: Final = 50  # recent suppressions on the page; the API lists up to 1000
ENDED_SHOWN: Final = 20
MATCHERS_LIMIT: Final = MAX_MATCHERS * (MAX_PATTERN + 120)  # characters in the textarea
DEFAULT_DURATION: Final = "2h"


@page()
async def noise_control(view: View) -> Response:
    ctx = view.ctx
    noise = ctx.engine.noise
    silences, windows = noise.listed(ctx.now())
    return view.page(
        "silences.html",
        title="Silences",
        silences=silences,
        windows=windows,
        ended=list(islice(reversed(noise.ended), ENDED_SHOWN)),
        # Each record with whether its hold is still on (not "is the fingerprint held now").
        suppressed=[
            (s, ctx.engine.still_holds(s))
            for s in islice(reversed(ctx.engine.suppressed), SUPPRESSED_SHOWN)
        ],
        default_duration=DEFAULT_DURATION,
        max_comment=MAX_COMMENT,
        matchers_limit=MATCHERS_LIMIT,
    )


def parse_matchers(text: str) -> list[Matcher]:
    """One ``field=glob`` or ``field!=glob`` per line; blank lines are skipped."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise FormError(400, "give at least one matcher, such as service=api")
    if len(lines) > MAX_MATCHERS:
        raise FormError(400, f"a silence has at most {MAX_MATCHERS} matchers")
    matchers = []
    for number, line in enumerate(lines, 1):
        try:
            matchers.append(parse_matcher(line))
        except ValidationError as exc:
            raise FormError(400, f"matcher {number}: {exc}") from None
    return matchers


@form(Permission.RESPOND)
async def create_silence(view: View, fields: dict[str, str]) -> Done:
    ctx = view.ctx
    matchers = parse_matchers(field(fields, "matchers", limit=MATCHERS_LIMIT, required=True))
    comment = field(fields, "comment", limit=MAX_COMMENT, required=True).strip()
    duration_text = field(fields, "duration", limit=40).strip() or DEFAULT_DURATION
    try:
        duration_s = parse_duration(duration_text)
    except ValueError as exc:
        raise FormError(400, f"duration: {exc}") from None
    starts_at, ends_at = resolve_span(ctx.now(), duration_s=duration_s)
    silence = noise_rules.create_silence(
        ctx,
        view.who,
        matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        comment=comment,
        via="dashboard",
    )
    what = ", ".join(str(m) for m in silence.matchers)
    warnings = "".join(f" (warning: {w})" for w in noise_rules.series_warnings(ctx, silence))
    return Done(f"{silence.id} silences {what} for {duration_text}{warnings}", "/silences")


@form(Permission.RESPOND)
async def expire_silence(view: View, fields: dict[str, str]) -> Done:
    silence_id = view.request.path_params["silence_id"]
    noise_rules.end_rule(view.ctx, view.who, "silences", silence_id, via="dashboard")
    return Done(f"{silence_id} expired: what it held pages if still firing", "/silences")


@form(Permission.RESPOND)
async def expire_maintenance(view: View, fields: dict[str, str]) -> Done:
    window_id = view.request.path_params["window_id"]
    noise_rules.end_rule(view.ctx, view.who, "maintenance", window_id, via="dashboard")
    return Done(f"maintenance window {window_id} ended", "/silences")


ROUTES = [
    Route("/silences", noise_control, methods=["GET"]),
    Route("/silences", create_silence, methods=["POST"]),
    Route("/silences/{silence_id}/expire", expire_silence, methods=["POST"]),
    Route("/maintenance/{window_id}/expire", expire_maintenance, methods=["POST"]),
]
