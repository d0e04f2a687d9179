"""Shared fixtures: a real store on a temporary SQLite file, and the demo's runbook."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stanch.core.runbook import Runbook, load_runbook
from stanch.demo.scenario import DEFAULT_RUNBOOK, DemoReport, Scenario, run_simulation
from stanch.store import Store


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'stanch.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def demo_runbook() -> Runbook:
    return load_runbook(DEFAULT_RUNBOOK)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, str]:
    """The full demo scenario, run once per test session: (report, database URL)."""
    out = tmp_path_factory.mktemp("demo")
    db_url = f"sqlite:///{out / 'demo.db'}"
    report = asyncio.run(run_simulation(Scenario(), db_url=db_url, out_dir=out))
    return report, db_url
