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


def append_lines(
    conn: Connection,
    deployment_id: str,
    lines: Sequence[tuple[str, str]],
    *,
    now: datetime | None = None,
) -> int:
    """Insert `(stream, text)` lines in the caller's transaction; return the last line number.

    Reserving the numbers by bumping `deployment.log_seq` row-locks the deployment until commit, so
    concurrent writers queue instead of racing, and a rolled-back batch leaves no gap.
    """
    if not lines:
        raise ValueError("append_lines needs at least one line")
    for stream, _ in lines:
        if stream not in STREAMS:
            raise ValueError(f"unknown log stream {stream!r}")
    last = conn.execute(
        update(_deployment)
        .where(_deployment.c.id == deployment_id)
        .values(log_seq=_deployment.c.log_seq + len(lines))
        .returning(_deployment.c.log_seq)
    ).scalar()
    if last is None:
        raise NotFound(f"deployment {deployment_id} not found")
    first = last - len(lines) + 1
    ts = now or utcnow()
    conn.execute(
        insert(_log),
        [
            {"deployment_id": deployment_id, "line_no": first + i, "stream": s, "text": clean_text(t), "ts": ts}
            for i, (s, t) in enumerate(lines)
        ],
    )
    return int(last)


def append_system(conn: Connection, deployment_id: str, *texts: str, now: datetime | None = None) -> int:
    return append_lines(conn, deployment_id, [("system", t) for t in texts], now=now)
