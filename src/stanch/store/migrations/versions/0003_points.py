"""Recorded history: closed points per series, what ``stanch backtest --db`` replays.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Written out in full, like 0001 and 0002; tests/store/test_migrations.py checks the head still
matches the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=200)


def upgrade() -> None:
    op.create_table(
        "points",
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("service", ID, nullable=False),
        sa.Column("route", sa.String(length=1000), nullable=False),
        sa.Column("interval", sa.Double(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("enforced", sa.Integer(), nullable=False),
        sa.Column("p50", sa.Double(), nullable=True),
        sa.Column("p95", sa.Double(), nullable=True),
        sa.Column("p99", sa.Double(), nullable=True),
        sa.Column("clients", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("ts", "service", "route", name="pk_points"),
    )


def downgrade() -> None:
    op.drop_table("points")
