"""One YAML document read for an input file, its errors as ``file:line: (yaml): problem``.

The settings file (:mod:`stanch.evaluation.detection_file`) and the labels
(:mod:`stanch.evaluation.labels`) both need the parsed data *and* the node tree beside it, so
that a later complaint about a value can name the line it is on; and both must turn whatever
PyYAML raises into one line naming the file and line, never a traceback. This is that step,
once, so the two inputs report the same kind of mistake the same way.
"""

from __future__ import annotations

from typing import Any

import yaml

from stanch.core.errors import ValidationError

#: What a PyYAML parse may raise besides a marked error: bad tags and constructors (ValueError,
#: TypeError), huge numbers (OverflowError), deeply nested input (RecursionError).
_UNMARKED = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError)


def read_yaml(text: str, filename: str) -> tuple[yaml.Node | None, Any]:
    """(root node, data) of the single YAML document in ``text``; ``(None, None)`` when it is
    empty. ValidationError names ``filename``, the line of the problem (1 when PyYAML does
    not know it) and PyYAML's own account of it."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or "invalid"
        if problem.startswith("but ") and exc.context:  # "but found another document"
            problem = f"{exc.context}, {problem}"
        raise ValidationError(f"{filename}:{line}: (yaml): {problem}") from None
    except _UNMARKED as exc:
        raise ValidationError(f"{filename}:1: (yaml): {str(exc)[:120]}") from None
    finally:
        loader.dispose()
    return root, data
