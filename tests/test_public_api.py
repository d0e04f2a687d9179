"""The public API is curated, sorted and importable; the core stays free of I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import stanch

CORE = Path(stanch.__file__).parent / "core"
# The core takes time as an argument and does no I/O: none of these may be imported there.
FORBIDDEN = {
    "time",
    "datetime",
    "asyncio",
    "socket",
    "os",
    "subprocess",
    "threading",
    "logging",
    "sqlalchemy",
    "alembic",
    "httpx",
    "starlette",
    "fastapi",
    "uvicorn",
    "redis",
    "typer",
    "rich",
    "random",
}


def test_all_is_sorted_and_every_name_resolves() -> None:
    """``stanch.__all__`` is sorted, has no duplicates, and each name is importable."""
    names = list(stanch.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(stanch, name) is not None


def test_core_imports_nothing_that_does_io_or_reads_the_clock() -> None:
    """No module under stanch/core imports a clock, network, storage or framework module."""
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                if module.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(CORE)}:{node.lineno} imports {module}")
    assert offenders == []
