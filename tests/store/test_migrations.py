"""Migrations: the initial revision builds exactly the models' tables, on both backends."""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from stanch.store import Store
from stanch.store.migrate import alembic_config, downgrade
from stanch.store.models import Base


def differences(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_from_empty_matches_the_models(url: str) -> None:
    """Opening an empty database migrates it to a schema autogenerate finds no difference in."""
    with Store.open(url) as store:
        assert differences(store) == []
        tables = set(inspect(store.engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_head_is_the_latest_revision() -> None:
    """The migrations form one line whose head is 0003 (update this when adding a revision)."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == ["0003"]
    assert Path(script.dir, "script.py.mako").is_file()


def test_downgrade_to_base_removes_every_table(url: str) -> None:
    """Downgrading to base drops all the tables the upgrade created."""
    with Store.open(url) as store:
        with store.engine.begin() as conn:
            downgrade(conn)
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}


def test_alembic_commands_work_from_a_url(tmp_path: Path) -> None:
    """With only ``sqlalchemy.url`` set (no connection), env.py connects by itself."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == "0003"
            assert list(compare_metadata(context, Base.metadata)) == []
    finally:
        engine.dispose()


def test_offline_mode_renders_sql(tmp_path: Path) -> None:
    """``alembic upgrade --sql`` renders the DDL without a database."""
    config = alembic_config(f"sqlite:///{tmp_path / 'unused.db'}")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    assert "CREATE TABLE incidents" in config.output_buffer.getvalue()
