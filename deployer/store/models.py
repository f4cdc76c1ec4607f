"""The tables (docs/architecture.md#tables). Created only by the Alembic migrations in `store/migrations`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BIGINT_PK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


class Deployment(SQLModel, table=True):
    __tablename__ = "deployment"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    slug: str = Field(max_length=64, unique=True)
    entity_type: str = Field(max_length=16)
    runtime: str = Field(max_length=16)
    status: str = Field(max_length=32, index=True)
    error_message: str | None = Field(default=None, max_length=500)
    port: int | None = None
    container_id: str | None = Field(default=None, max_length=128)
    image: str | None = Field(default=None, max_length=200)
    host_url: str | None = Field(default=None, max_length=300)
    registry_url: str | None = Field(default=None, max_length=300)
    public_key_b64: str | None = Field(default=None, max_length=200)
    entity_id: str | None = Field(default=None, max_length=200)
    env: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    memory_mb: int
    cpu_millis: int
    last_exit_code: int | None = None
    last_crash_at: datetime | None = _ts()
    restart_count: int = 0
    # The last log line number handed out; bumping it row-locks the deployment, which is what makes
    # line numbers gap-free whoever writes (tailer or system line).
    log_seq: int = 0
    # Who drives the boot pipeline now: stages carry this token and stop quietly if it changed. A stale
    # heartbeat lets drain_queue hand the row to a new driver after a worker died mid-stage.
    driver_token: str | None = Field(default=None, max_length=36)
    heartbeat_at: datetime | None = _ts()
    drive_attempts: int = 0
    # Docker timestamps (ns) of the last stored stdout and stderr lines: a resuming tailer skips what
    # is not newer, per stream (each stream is stamped in order; the two are not ordered together).
    log_cursor_out_ns: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    log_cursor_err_ns: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    health_failures: int = 0
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    started_at: datetime | None = _ts()
    stopped_at: datetime | None = _ts()
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class DeploymentLog(SQLModel, table=True):
    __tablename__ = "deployment_log"
    __table_args__ = (
        UniqueConstraint("deployment_id", "line_no", name="uq_deployment_log_line"),
        Index("ix_deployment_log_stream_ts", "stream", "ts"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    deployment_id: str = Field(
        sa_column=Column(Text, ForeignKey("deployment.id", ondelete="CASCADE"), nullable=False)
    )
    line_no: int
    stream: str = Field(max_length=8)
    text: str = Field(sa_column=Column(Text, nullable=False))
    ts: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class DeploymentMetric(SQLModel, table=True):
    __tablename__ = "deployment_metric"
    __table_args__ = (
        Index("ix_deployment_metric_deployment_sampled", "deployment_id", "sampled_at"),
        Index("ix_deployment_metric_sampled", "sampled_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    deployment_id: str = Field(
        sa_column=Column(Text, ForeignKey("deployment.id", ondelete="CASCADE"), nullable=False)
    )
    sampled_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    mem_used_mb: float
    mem_limit_mb: float
    cpu_pct: float


class PortAllocation(SQLModel, table=True):
    __tablename__ = "port_allocation"

    port: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    deployment_id: str = Field(
        sa_column=Column(Text, ForeignKey("deployment.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    taken_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    last_used_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()
