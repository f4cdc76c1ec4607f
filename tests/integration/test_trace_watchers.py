"""The query watcher on real databases: every statement is recorded once with its family, duration
and the `slow` tag, single and executemany alike; a failing statement still raises as before."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from deployer.db import make_engine
from traces.recorder import Recorder
from traces.watchers import install_sqlalchemy


class Kept:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def write(self, entries: list[dict[str, Any]]) -> None:
        self.entries += entries

    def update(self, uuid: str, content: dict[str, Any], tags: list[str]) -> None:
        raise AssertionError("queries are never updated")


@pytest.mark.parametrize("slow_ms", [0, 60_000])
def test_each_statement_is_recorded_once_with_its_family_and_the_slow_tag(engine: Engine, slow_ms: int) -> None:
    watched = make_engine(engine.url.render_as_string(hide_password=False))
    sink = Kept()
    rec = Recorder(sink, watchers=frozenset({"query"}), slow_query_ms=slow_ms)
    install_sqlalchemy(watched, rec)
    with watched.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t (n) VALUES (:n)"), [{"n": 1}, {"n": 2}, {"n": 3}])
        assert conn.execute(text("SELECT sum(n) FROM t WHERE n > 1")).scalar() == 5
        assert conn.execute(text("SELECT sum(n) FROM t WHERE n > 2")).scalar() == 3
        with pytest.raises(DBAPIError):
            conn.execute(text("SELECT * FROM no_such_table"))
    assert rec.flush()
    watched.dispose()
    queries = [e for e in sink.entries if e["type"] == "query"]
    by_sql = {e["content"]["sql"]: e for e in queries}
    assert "SELECT * FROM no_such_table" not in by_sql
    insert = by_sql["INSERT INTO t (n) VALUES (?)" if engine.dialect.name == "sqlite" else
                    "INSERT INTO t (n) VALUES (%(n)s)"]  # fmt: skip
    assert insert["content"]["many"] is True and insert["content"]["connection"] == engine.dialect.name
    sums = [e for e in queries if e["content"]["sql"].startswith("SELECT sum(n)")]
    assert len(sums) == 2 and sums[0]["familyHash"] == sums[1]["familyHash"]  # literals differ only
    assert all(e["content"]["duration_ms"] >= 0 for e in queries)
    assert all(("slow" in e["tags"]) == (slow_ms == 0) for e in queries)
