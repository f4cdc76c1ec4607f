"""The tables of docs/architecture.md#tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "deployment",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("entity_type", sa.String(16), nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_message", sa.String(500)),
        sa.Column("port", sa.Integer),
        sa.Column("container_id", sa.String(128)),
        sa.Column("image", sa.String(200)),
        sa.Column("host_url", sa.String(300)),
        sa.Column("registry_url", sa.String(300)),
        sa.Column("public_key_b64", sa.String(200)),
        sa.Column("entity_id", sa.String(200)),
        sa.Column("env", sa.JSON, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("cpu_millis", sa.Integer, nullable=False),
        sa.Column("last_exit_code", sa.Integer),
        _ts("last_crash_at"),
        sa.Column("restart_count", sa.Integer, nullable=False),
        sa.Column("log_seq", sa.Integer, nullable=False),
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("stopped_at"),
        _ts("updated_at", nullable=False),
    )
    op.create_index("ix_deployment_status", "deployment", ["status"])
    op.create_index("ix_deployment_created_at", "deployment", ["created_at"])

    op.create_table(
        "deployment_log",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Text, sa.ForeignKey("deployment.id", ondelete="CASCADE"), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _ts("ts", nullable=False),
        sa.UniqueConstraint("deployment_id", "line_no", name="uq_deployment_log_line"),
    )
    op.create_index("ix_deployment_log_stream_ts", "deployment_log", ["stream", "ts"])

    op.create_table(
        "deployment_metric",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Text, sa.ForeignKey("deployment.id", ondelete="CASCADE"), nullable=False),
        _ts("sampled_at", nullable=False),
        sa.Column("mem_used_mb", sa.Float, nullable=False),
        sa.Column("mem_limit_mb", sa.Float, nullable=False),
        sa.Column("cpu_pct", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_deployment_metric_deployment_sampled", "deployment_metric", ["deployment_id", "sampled_at"]
    )
    op.create_index("ix_deployment_metric_sampled", "deployment_metric", ["sampled_at"])

    op.create_table(
        "port_allocation",
        sa.Column("port", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "deployment_id",
            sa.Text,
            sa.ForeignKey("deployment.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        _ts("taken_at", nullable=False),
    )

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _ts("created_at", nullable=False),
        _ts("last_used_at"),
        _ts("revoked_at"),
    )


def downgrade() -> None:
    op.drop_table("api_token")
    op.drop_table("port_allocation")
    op.drop_index("ix_deployment_metric_sampled", table_name="deployment_metric")
    op.drop_index("ix_deployment_metric_deployment_sampled", table_name="deployment_metric")
    op.drop_table("deployment_metric")
    op.drop_index("ix_deployment_log_stream_ts", table_name="deployment_log")
    op.drop_table("deployment_log")
    op.drop_index("ix_deployment_created_at", table_name="deployment")
    op.drop_index("ix_deployment_status", table_name="deployment")
    op.drop_table("deployment")
