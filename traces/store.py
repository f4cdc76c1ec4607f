"""The trace runtime's own SQLite file: entries, their tags (cascade), pinned monitoring tags and the
ingest nonces (so every server process on the file shares one replay guard). Standard library only.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  uuid TEXT NOT NULL UNIQUE,
  batch_id TEXT NOT NULL,
  family_hash TEXT,
  type TEXT NOT NULL,
  content TEXT NOT NULL,
  is_latest INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_trace_entries_created ON trace_entries (created_at);
CREATE INDEX IF NOT EXISTS ix_trace_entries_type_latest ON trace_entries (type, is_latest);
CREATE INDEX IF NOT EXISTS ix_trace_entries_batch ON trace_entries (batch_id);
CREATE INDEX IF NOT EXISTS ix_trace_entries_family ON trace_entries (family_hash);
CREATE INDEX IF NOT EXISTS ix_trace_entries_family_latest ON trace_entries (family_hash, type) WHERE is_latest = 1;
CREATE TABLE IF NOT EXISTS trace_entry_tags (
  entry_uuid TEXT NOT NULL REFERENCES trace_entries (uuid) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (entry_uuid, tag)
);
CREATE INDEX IF NOT EXISTS ix_trace_entry_tags_tag ON trace_entry_tags (tag);
CREATE TABLE IF NOT EXISTS trace_monitoring (tag TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS trace_nonces (nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ix_trace_nonces_expires ON trace_nonces (expires_at);
"""
PRUNE_BATCH = 5000


class InvalidEntry(ValueError):
    pass


def new_uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def now_ms() -> int:
    return int(time.time() * 1000)


def check_entry(raw: Any) -> dict[str, Any]:
    """An entry as the recorder sends it; anything else is refused with the field it lacks."""
    if not isinstance(raw, dict):
        raise InvalidEntry("each entry must be an object")
    if raw.get("uuid") in (None, ""):  # the reference's store makes one up too
        raw = {**raw, "uuid": new_uuid()}
    for name, kind in (("uuid", str), ("batchId", str), ("type", str), ("createdAt", int)):
        if not isinstance(raw.get(name), kind) or isinstance(raw.get(name), bool):
            raise InvalidEntry(f"entry.{name} must be a {kind.__name__}")
    if not isinstance(raw.get("content"), dict):
        raise InvalidEntry("entry.content must be an object")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidEntry("entry.tags must be a list of strings")
    family = raw.get("familyHash")
    if family is not None and not isinstance(family, str):
        raise InvalidEntry("entry.familyHash must be a string")
    entry: dict[str, Any] = raw
    return entry


class TraceStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._prepare()

    def _prepare(self) -> None:
        """WAL and the schema, once per process, serialised across processes by a lock file: SQLite answers
        `database is locked` at once, without waiting out the busy timeout, to a second connection that
        asks for WAL while another is switching a new file to it."""
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                db = self._conn()
                db.execute("PRAGMA journal_mode=WAL")  # kept in the file: later connections need not ask
                db.executescript(SCHEMA)  # its own transaction: executescript commits as it goes
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ---- ingest ----
    def remember_nonce(self, nonce: str, expires_ms: int) -> bool:
        with self.tx() as db:
            db.execute("DELETE FROM trace_nonces WHERE expires_at < ?", (now_ms(),))
            sql = "INSERT OR IGNORE INTO trace_nonces (nonce, expires_at) VALUES (?, ?)"
            cur = db.execute(sql, (nonce, expires_ms))
            return cur.rowcount == 1

    def write(self, entries: Iterable[dict[str, Any]]) -> int:
        """One transaction a batch. Of a family's entries only the newest stays latest: one UPDATE per
        family in the batch, which touches just the row that was latest (the partial index finds it),
        not every older member again."""
        rows = [check_entry(e) for e in entries]
        newest: dict[tuple[str, str], int] = {}
        for i, e in enumerate(rows):
            if e.get("familyHash") and e.get("isLatest", True):
                newest[(e["familyHash"], e["type"])] = i
        latest_at = set(newest.values())

        def latest(i: int, e: dict[str, Any]) -> int:
            return int(i in latest_at) if e.get("familyHash") else int(bool(e.get("isLatest", True)))

        values = [
            (e["uuid"], e["batchId"], e.get("familyHash"), e["type"], json.dumps(e["content"], default=str),
             latest(i, e), e["createdAt"])
            for i, e in enumerate(rows)
        ]  # fmt: skip
        with self.tx() as db:
            db.executemany("UPDATE trace_entries SET is_latest = 0 "
                           "WHERE family_hash = ? AND type = ? AND is_latest = 1", list(newest))  # fmt: skip
            db.executemany("INSERT OR REPLACE INTO trace_entries (uuid, batch_id, family_hash, type, content, "
                           "is_latest, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", values)  # fmt: skip
            db.executemany("INSERT OR IGNORE INTO trace_entry_tags (entry_uuid, tag) VALUES (?, ?)",
                           [(e["uuid"], t) for e in rows for t in e.get("tags", [])])  # fmt: skip
        return len(rows)

    def update(self, uuid: str, content: dict[str, Any] | None, tags: Iterable[str] = (), *,
               is_latest: bool | None = None) -> bool:  # fmt: skip
        """The reference's patch: new content and/or the latest flag; our tags are added. False when
        there is no such entry (the reference answers ok all the same)."""
        sets: list[str] = []
        args: list[Any] = []
        if content is not None:
            sets.append("content = ?")
            args.append(json.dumps(content, default=str))
        if is_latest is not None:
            sets.append("is_latest = ?")
            args.append(int(is_latest))
        with self.tx() as db:
            found = db.execute("SELECT 1 FROM trace_entries WHERE uuid = ?", (uuid,)).fetchone() is not None
            if sets:
                db.execute(f"UPDATE trace_entries SET {', '.join(sets)} WHERE uuid = ?", (*args, uuid))  # noqa: S608
            if found:
                db.executemany("INSERT OR IGNORE INTO trace_entry_tags (entry_uuid, tag) VALUES (?, ?)",
                               [(uuid, t) for t in tags])  # fmt: skip
            return found

    def mark_family_stale(self, family_hash: str, except_uuid: str | None) -> int:
        with self.tx() as db:
            return db.execute("UPDATE trace_entries SET is_latest = 0 WHERE family_hash = ? AND uuid IS NOT ? "
                              "AND is_latest = 1",
                              (family_hash, except_uuid)).rowcount  # fmt: skip

    # ---- reading ----
    def _entry(self, r: sqlite3.Row, tags: list[str]) -> dict[str, Any]:
        return {"uuid": r["uuid"], "batchId": r["batch_id"], "familyHash": r["family_hash"], "type": r["type"],
                "content": json.loads(r["content"]), "isLatest": bool(r["is_latest"]), "createdAt": r["created_at"],
                "tags": tags}  # fmt: skip

    def _with_tags(self, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        tags: dict[str, list[str]] = {}
        for t in self._conn().execute(f"SELECT entry_uuid, tag FROM trace_entry_tags WHERE entry_uuid IN ({marks}) "  # noqa: S608
                                      "ORDER BY tag", [r["uuid"] for r in rows]):  # fmt: skip
            tags.setdefault(t["entry_uuid"], []).append(t["tag"])
        return [self._entry(r, tags.get(r["uuid"], [])) for r in rows]

    def entries(self, *, type: str | None = None, tag: str | None = None, batch: str | None = None,
                since_ms: int | None = None, until_ms: int | None = None, limit: int = 50,
                offset: int = 0) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if type:
            where.append("e.type = ?")
            args.append(type)
        if batch:
            where.append("e.batch_id = ?")
            args.append(batch)
        if tag:
            where.append("EXISTS (SELECT 1 FROM trace_entry_tags t WHERE t.entry_uuid = e.uuid AND t.tag = ?)")
            args.append(tag)
        if since_ms is not None:
            where.append("e.created_at >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append("e.created_at <= ?")
            args.append(until_ms)
        cond = " AND ".join(where)
        db = self._conn()
        total = db.execute(f"SELECT COUNT(*) FROM trace_entries e WHERE {cond}", args).fetchone()[0]  # noqa: S608
        rows = db.execute(f"SELECT * FROM trace_entries e WHERE {cond} ORDER BY e.created_at DESC, e.id DESC "  # noqa: S608
                          "LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()  # fmt: skip
        return self._with_tags(rows), int(total)

    def entry(self, uuid: str) -> dict[str, Any] | None:
        rows = self._conn().execute("SELECT * FROM trace_entries WHERE uuid = ?", (uuid,)).fetchall()
        found = self._with_tags(rows)
        return found[0] if found else None

    def batch(self, batch_id: str) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT * FROM trace_entries WHERE batch_id = ? ORDER BY created_at, id",
                                    (batch_id,)).fetchall()  # fmt: skip
        return self._with_tags(rows)

    def stats(self) -> dict[str, Any]:
        db = self._conn()
        counts = db.execute("SELECT type, COUNT(*) AS n FROM trace_entries GROUP BY type")
        per_type = {r["type"]: r["n"] for r in counts}
        hour_ago = now_ms() - 3_600_000
        counts = db.execute("SELECT type, COUNT(*) AS n FROM trace_entries WHERE created_at >= ? GROUP BY type",
                            (hour_ago,))  # fmt: skip
        recent = {r["type"]: r["n"] for r in counts}
        return {"total": sum(per_type.values()), "per_type": per_type, "last_hour": recent}

    # ---- monitoring ----
    def monitoring(self) -> list[str]:
        return [r["tag"] for r in self._conn().execute("SELECT tag FROM trace_monitoring ORDER BY tag")]

    def pin(self, tag: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO trace_monitoring (tag, created_at) VALUES (?, ?)", (tag, now_ms()))

    def unpin(self, tag: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM trace_monitoring WHERE tag = ?", (tag,))

    # ---- clean-up ----
    def prune(self, cutoff_ms: int, *, keep_exceptions: bool = False) -> int:
        """Batched: entries older than the cut-off (by the created_at index), their tags by cascade."""
        keep = " AND type != 'exception'" if keep_exceptions else ""
        removed = 0
        while True:
            with self.tx() as db:
                n = db.execute(f"DELETE FROM trace_entries WHERE id IN (SELECT id FROM trace_entries "  # noqa: S608
                               f"WHERE created_at < ?{keep} LIMIT ?)", (cutoff_ms, PRUNE_BATCH)).rowcount  # fmt: skip
            removed += n
            if n < PRUNE_BATCH:
                return removed

    def clear(self) -> int:
        with self.tx() as db:
            return db.execute("DELETE FROM trace_entries").rowcount
