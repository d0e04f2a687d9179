"""Reading a runbook's YAML safely, and pointing at lines: the I/O-free half of loading.

The document is composed into nodes first and bounded (alias bombs, deep nesting, duplicate
keys) before any Python object is built; validation errors are then mapped back from their
field path to the 1-based line of the node, so every problem reads ``file:line: field: msg``.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

from stanch.core.errors import RunbookError

MAX_DEPTH: Final = 50
MAX_NODES: Final = 200_000


def read_yaml(text: str, filename: str) -> tuple[yaml.Node | None, Any, list[tuple[int, str]]]:
    """Compose, bound, then construct: the size checks run before any Python object is built."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters up front
        root = loader.get_single_node()
        if root is None:
            return None, None, []
        problems = check_nodes(root, filename)
        return root, loader.construct_document(root), problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = " ".join(filter(None, (exc.context, exc.problem))) or "invalid YAML"
        raise RunbookError([f"{filename}:{line}: (yaml): {message}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise RunbookError([f"{filename}:{line}: (yaml): {exc.reason}"]) from None
    except RecursionError:
        raise RunbookError([f"{filename}:1: (yaml): nested too deeply"]) from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # The safe constructor raises plain errors for tagged scalars it cannot build
        # (``!!timestamp 2024-13-45``, a 10,000-digit int); they carry no line.
        raise RunbookError([f"{filename}:1: (yaml): {str(exc)[:120]}"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def check_nodes(root: yaml.Node, filename: str) -> list[tuple[int, str]]:
    """Refuse alias bombs and deep nesting; report duplicate keys, which YAML would drop."""
    problems: list[tuple[int, str]] = []
    checked: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    count = 0
    while stack:
        node, path = stack.pop()
        count += 1
        line = node.start_mark.line + 1
        if count > MAX_NODES:
            raise RunbookError(
                [
                    f"{filename}:{line}: (yaml): more than {MAX_NODES} nodes once aliases "
                    "are expanded"
                ]
            )
        if len(path) > MAX_DEPTH:
            raise RunbookError(
                [
                    f"{filename}:{line}: (yaml): nested deeper than {MAX_DEPTH} levels "
                    "(or an alias refers to itself)"
                ]
            )
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_seen: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    stack.append((key, (*path, "<key>")))
                    continue
                stack.append((value, (*path, key.value)))
                if id(node) in checked or key.value == "<<":
                    continue
                key_line = key.start_mark.line + 1
                ident = (key.tag, key.value)
                if ident not in first_seen:
                    first_seen[ident] = key_line
                    continue
                where = field_path((*path, key.value))
                problems.append(
                    (
                        key_line,
                        f"{filename}:{key_line}: {where}: duplicate key (first on line "
                        f"{first_seen[ident]}); YAML would silently keep only the last",
                    )
                )
            checked.add(id(node))
    return problems


def line_of(root: yaml.Node, loc: tuple[str | int, ...]) -> int:
    """1-based line of the node at ``loc``, or of the nearest ancestor that exists."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            # Last match wins, as in the constructor; keys report their own line so a
            # block value (``params:`` then an indented mapping) points at its name.
            for key, value in reversed(node.value):
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def field_path(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text or "(root)"
