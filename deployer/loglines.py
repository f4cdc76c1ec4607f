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
Row = tuple[str, int, str, str, datetime | str]  # deployment_id, line_no, stream, text, ts (ISO 8601 text or datetime)
COLUMNS = ("deployment_id", "line_no", "stream", "text", "ts")


def insert_rows(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert log rows; large batches go through COPY on PostgreSQL.

    COPY gets timestamps as ISO 8601 text, which the tailer has from Docker already: formatting or
    dumping a datetime per row was a third of the time at tens of thousands of lines a second. Rows
    go one by one (psycopg streams them while we produce more): building the whole COPY text first
    and writing it at once measured slower."""
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        with dbapi.cursor() as cur, cur.copy(f"COPY deployment_log ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            write = copy.write_row
            for dep, line_no, stream, text, ts in rows:
                write((dep, line_no, stream, text, ts if isinstance(ts, str) else ts.isoformat()))
        return
    conn.execute(insert(_log), [
        {"deployment_id": d, "line_no": n, "stream": st, "text": t, "ts": _as_datetime(ts)} for d, n, st, t, ts in rows
    ])  # fmt: skip


def _as_datetime(ts: datetime | str) -> datetime:
    return datetime.fromisoformat(ts) if isinstance(ts, str) else ts


def append_lines(
    conn: Connection,
    deployment_id: str,
    lines: Sequence[tuple[str, str]] | Sequence[tuple[str, str, datetime | str]],
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
    rows: list[Row] = [
        (deployment_id, first + i, str(line[0]), clean_text(str(line[1])), line[2] if len(line) > 2 else default_ts)
        for i, line in enumerate(lines)
    ]
    insert_rows(conn, rows)
    return first + len(lines) - 1


def append_system(conn: Connection, deployment_id: str, *texts: str, now: datetime | None = None) -> int:
    return append_lines(conn, deployment_id, [("system", t) for t in texts], now=now)
