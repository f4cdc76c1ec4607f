"""Supervision: the log tailer's cursor and the persisted health failure count.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("log_cursor_out_ns", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("log_cursor_err_ns", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("health_failures", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.drop_column("health_failures")
        batch.drop_column("log_cursor_err_ns")
        batch.drop_column("log_cursor_out_ns")
