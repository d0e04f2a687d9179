"""What every benchmark's result file starts with, and how it is written."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_lines() -> list[str]:
    """The machine and interpreter the numbers were measured on, as Markdown list items."""
    return [
        f"- machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, "
        f"{platform.system()} {platform.release()}",
        f"- python: {platform.python_version()} ({platform.python_implementation()})",
    ]


def publish(text: str, path: Path, *, write: bool) -> None:
    """Print the table and, unless told not to, write it to ``path``."""
    print(text)
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"written to {path}")
