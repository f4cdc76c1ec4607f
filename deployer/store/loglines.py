"""Appending log lines with gap-free, monotonic line numbers per deployment, whoever writes.

System lines are the deployer's own words. Output of a build or a container kept among them (build
steps, a crash's last lines) is quoted: it starts with `OUTPUT_MARK`. A status line (`status: <status>`,
what the dashboard's timeline is drawn from) is written by `append_status` alone, when a transition
happens; any other system text that would read as one is quoted, so no output can pass for a stage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, update

from deployer.errors import NotFound
from deployer.store.models import utcnow
from deployer.store.states import Status
from deployer.store.tables import DEPLOYMENT as _deployment
from deployer.store.tables import DEPLOYMENT_LOG as _log

STREAMS = ("stdout", "stderr", "system")
OUTPUT_MARK = "| "  # a system line quoting output: never the deployer's words, never a status line
STATUS_LINE = re.compile(r"status: ([a-z_]+)(?: — |$)")
_LOOKS_LIKE_STATUS = re.compile(r"\W*status\W*:", re.IGNORECASE)
_STATUSES = frozenset(s.value for s in Status)


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


COPY_CHUNK = 2000
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def copy_texts(texts: Sequence[str]) -> list[str]:
    """Texts escaped for COPY's text format. Done over all of them at once, joined by NUL (which
    `clean_text` has taken out of every line), because per line it was the writer's largest cost."""
    blob = "\x00".join(texts)
    for raw, escaped in _COPY_ESCAPES:
        if raw in blob:
            blob = blob.replace(raw, escaped)
    return blob.split("\x00")


def copy_data(rows: Sequence[Row]) -> str:
    """Rows in COPY's text format; timestamps as ISO 8601 text, which the tailer has from Docker already."""
    texts = copy_texts([r[3] for r in rows])
    return "".join([
        f"{dep}\t{line_no}\t{stream}\t{text}\t{ts if isinstance(ts, str) else ts.isoformat()}\n"
        for (dep, line_no, stream, _, ts), text in zip(rows, texts, strict=True)
    ])  # fmt: skip


def insert_rows(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert log rows; large batches go through COPY on PostgreSQL, in chunks of text, so the server
    stores one chunk while the next is built (one string for the whole batch measured slower)."""
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        with dbapi.cursor() as cur, cur.copy(f"COPY deployment_log ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(0, len(rows), COPY_CHUNK):
                copy.write(copy_data(rows[i : i + COPY_CHUNK]))
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


def quoted(text: str) -> str:
    """Output of a build or a container, to keep among system lines."""
    return OUTPUT_MARK + text


def status_text(status: Status, message: str | None = None) -> str:
    first = message.splitlines()[0] if message else ""
    return f"status: {status}" + (f" — {first}" if first else "")


def status_of(stream: str, text: str) -> str | None:
    """The status a log line records the deployment entering, or None: only system lines in the shape
    `append_status` writes, naming a status that exists."""
    m = STATUS_LINE.match(text) if stream == "system" else None
    return m.group(1) if m is not None and m.group(1) in _STATUSES else None


def append_status(conn: Connection, deployment_id: str, status: Status, message: str | None = None, *,
                  now: datetime | None = None) -> int:  # fmt: skip
    """The system line of a transition (its caller's transaction makes the transition itself)."""
    return append_lines(conn, deployment_id, [("system", status_text(status, message))], now=now)


def append_system(conn: Connection, deployment_id: str, *texts: str, now: datetime | None = None) -> int:
    """The deployer's own lines; one that would read as a status line is quoted (see `append_status`)."""
    lines = [("system", quoted(t) if _LOOKS_LIKE_STATUS.match(t) and not t.startswith(OUTPUT_MARK) else t)
             for t in texts]  # fmt: skip
    return append_lines(conn, deployment_id, lines, now=now)
