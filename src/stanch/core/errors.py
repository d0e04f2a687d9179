"""Stanch's one exception hierarchy.

::

    StanchError
    ├── ValidationError          bad input from a user: runbook, config, event, request
    │   └── RunbookError         a runbook file that does not validate (file, line, field)
    ├── IllegalTransition        a state machine asked to move along an edge it does not have
    └── NotFound                 an incident, action or version id that does not exist
"""

from __future__ import annotations


class StanchError(Exception):
    """Base class of every error Stanch raises on purpose."""


class ValidationError(StanchError):
    """Input from outside (a user, a file, a peer) that Stanch refuses, with the reason."""


class RunbookError(ValidationError):
    """A runbook that does not validate; ``problems`` holds ``file:line: field: msg`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class IllegalTransition(StanchError):
    """A state machine was asked to take a transition its table does not allow."""


class NotFound(StanchError):
    """An id that names nothing Stanch knows."""
