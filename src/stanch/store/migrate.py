"""Schema migrations, run from code: no ``alembic.ini`` is needed at run time.

``Store.open`` calls :func:`upgrade` on every start, so a new release brings its tables along.
For development, ``alembic_config(url)`` gives the same configuration to Alembic's commands
(``command.revision(cfg, autogenerate=True, message=...)``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

SCRIPT_LOCATION = Path(__file__).with_name("migrations")

# Any fixed number: two control-plane replicas starting together take turns upgrading.
_PG_LOCK_KEY = 0x5354_414E  # "STAN"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at Stanch's migrations (and at ``url``, if given)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        # ConfigParser interpolates '%'; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision``, inside its transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def downgrade(connection: Connection, revision: str = "base") -> None:
    """Migrate the database behind ``connection`` down to ``revision`` (tests, rollbacks)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
