"""Initial schema: incidents and their timeline, actions and queued decisions, policies,
configuration history, changes, post-mortems, meta and counters.

Revision ID: 0001
Revises:
Create Date: 2026-05-09

Written out in full rather than imported from the models, so this revision keeps meaning what it
meant when later ones change the models; tests/store/test_migrations.py checks that the head
revision still matches them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=200)
ENUM = sa.String(length=32)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", ID, nullable=False),
        sa.Column("service", ID, nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("severity", ENUM, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.Double(), nullable=False),
        sa.Column("resolved_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_service", "incidents", ["service"])
    op.create_index("ix_incidents_state", "incidents", ["state"])
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"])

    op.create_table(
        "timeline",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("actor", ID, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timeline"),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_timeline_incident_id_incidents",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("incident_id", "seq", name="uq_timeline_incident_id_seq"),
    )

    op.create_table(
        "actions",
        sa.Column("id", ID, nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("service", ID, nullable=False),
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("mode", ENUM, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_actions"),
    )
    op.create_index("ix_actions_incident_id", "actions", ["incident_id"])
    op.create_index("ix_actions_state", "actions", ["state"])

    op.create_table(
        "action_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action_id", ID, nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("actor", ID, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_action_decisions"),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name="fk_action_decisions_action_id_actions"
        ),
        sa.CheckConstraint(
            "decision IN ('approve', 'reject', 'revert')", name="ck_action_decisions_decision"
        ),
    )
    op.create_index("ix_action_decisions_action_id", "action_decisions", ["action_id"])
    op.create_index("ix_action_decisions_consumed", "action_decisions", ["consumed"])

    op.create_table(
        "policies",
        sa.Column("service", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("service", name="pk_policies"),
    )

    op.create_table(
        "config_versions",
        sa.Column("service", ID, nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("author", ID, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("changed", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("service", "version", name="pk_config_versions"),
    )

    op.create_table(
        "changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("service", ID, nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
    )
    op.create_index("ix_changes_service", "changes", ["service"])
    op.create_index("ix_changes_ts", "changes", ["ts"])

    op.create_table(
        "postmortems",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name="pk_postmortems"),
    )

    op.create_table(
        "meta",
        sa.Column("key", ID, nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )

    op.create_table(
        "counters",
        sa.Column("name", ID, nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )


def downgrade() -> None:
    # Children before parents, for the foreign keys; indexes go with their tables.
    for table in (
        "counters",
        "meta",
        "postmortems",
        "changes",
        "config_versions",
        "policies",
        "action_decisions",
        "actions",
        "timeline",
        "incidents",
    ):
        op.drop_table(table)
