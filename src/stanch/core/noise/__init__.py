"""Noise control: silences, maintenance windows and inhibition hold alerts back, with a reason.

The subsystem's public surface; each part has its own module:

- :mod:`~stanch.core.noise.matchers`: the glob matchers a silence names alerts with;
- :mod:`~stanch.core.noise.rules`: silences and maintenance windows, and when each is in force;
- :mod:`~stanch.core.noise.checks`: what a new rule must satisfy (loaded ones are taken as saved);
- :mod:`~stanch.core.noise.inhibition`: when a service-wide alert explains a route's alert;
- :mod:`~stanch.core.noise.control`: :class:`NoiseControl`, the rules in force and the check
  every alert passes;
- :mod:`~stanch.core.noise.stored`: the rules' stored form.
"""

from stanch.core.noise.checks import (
    MAX_COMMENT,
    MAX_LEAD_S,
    MAX_MATCHERS,
    MAX_PATTERN,
    MAX_SPAN_S,
    ROUTE_HINT,
    check_kind_glob,
    check_new_silence,
    check_new_window,
    check_route_glob,
    resolve_span,
    silence_series_warnings,
    window_series_warnings,
)
from stanch.core.noise.control import MAX_ENDED, MAX_RULES, Ended, NoiseControl, Suppression
from stanch.core.noise.inhibition import INHIBIT_FACTOR, change, explains, relative_change
from stanch.core.noise.matchers import Matcher, parse_matcher
from stanch.core.noise.rules import (
    DAY_S,
    WEEK_S,
    WEEKDAY_NAMES,
    MaintenanceWindow,
    Silence,
    Status,
)
from stanch.core.noise.stored import (
    silence_from_dict,
    silence_to_dict,
    window_from_dict,
    window_to_dict,
)

__all__ = [
    "DAY_S",
    "INHIBIT_FACTOR",
    "MAX_COMMENT",
    "MAX_ENDED",
    "MAX_LEAD_S",
    "MAX_MATCHERS",
    "MAX_PATTERN",
    "MAX_RULES",
    "MAX_SPAN_S",
    "ROUTE_HINT",
    "WEEKDAY_NAMES",
    "WEEK_S",
    "Ended",
    "MaintenanceWindow",
    "Matcher",
    "NoiseControl",
    "Silence",
    "Status",
    "Suppression",
    "change",
    "check_kind_glob",
    "check_new_silence",
    "check_new_window",
    "check_route_glob",
    "explains",
    "parse_matcher",
    "relative_change",
    "resolve_span",
    "silence_from_dict",
    "silence_series_warnings",
    "silence_to_dict",
    "window_from_dict",
    "window_series_warnings",
    "window_to_dict",
]
