"""Appending log lines with gap-free, monotonic line numbers per deployment, whoever writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, update

from deployer.errors import NotFound
from deployer.models import Deployment, DeploymentLog, utcnow

STREAMS = ("stdout", "stderr", "system")
_deployment = Deployment.__table__  # type: ignore[attr-defined]
_log = DeploymentLog.__table__  # type: ignore[attr-defined]


def clean_text(text: str) -> str:
    """Postgres text cannot hold NUL; a trailing CR (CRLF output) is noise in a line."""
    return text.replace("\x00", "\ufffd").rstrip("\r")


def reserve(conn: Connection, deployment_id: str, count: int) -> int:
    """Reserve `count` line numbers; return the first.

    Bumping `deployment.log_seq` row-locks the deployment until commit, so concurrent writers queue
    instead of racing, and a rolled-back batch leaves no gap.
    """
    last = conn.execute(
        update(_deployment)
        .where(_deployment.c.id == deployment_id)
        .values(log_seq=_deployment.c.log_seq + count)
        .returning(_deployment.c.log_seq)
    ).scalar()
    if last is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return int(last) - count + 1


COPY_THRESHOLD = 64


def insert_rows(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    """Insert log rows; large batches go through COPY on PostgreSQL."""
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        with dbapi.cursor() as cur, cur.copy(
            "COPY deployment_log (deployment_id, line_no, stream, text, ts) FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row((r["deployment_id"], r["line_no"], r["stream"], r["text"], r["ts"]))
        return
    conn.execute(insert(_log), list(rows))


def append_lines(
    conn: Connection,
    deployment_id: str,
    lines: Sequence[tuple[str, str]] | Sequence[tuple[str, str, datetime]],
    *,
    now: datetime | None = None,
) -> int:
    """Insert `(stream, text[, ts])` lines in the caller's transaction; return the last line number."""
    if not lines:
        raise ValueError("append_lines needs at least one line")
    for line in lines:
        if line[0] not in STREAMS:
            raise ValueError(f"unknown log stream {line[0]!r}")
    first = reserve(conn, deployment_id, len(lines))
    default_ts = now or utcnow()
    insert_rows(
        conn,
        [
            {"deployment_id": deployment_id, "line_no": first + i, "stream": line[0], "text": clean_text(str(line[1])),
             "ts": line[2] if len(line) > 2 else default_ts}
            for i, line in enumerate(lines)
        ],
    )  # fmt: skip
    return first + len(lines) - 1


def append_system(conn: Connection, deployment_id: str, *texts: str, now: datetime | None = None) -> int:
    return append_lines(conn, deployment_id, [("system", t) for t in texts], now=now)
