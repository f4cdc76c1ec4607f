"""Watchers on real services. query: every statement once with its family, duration and the `slow`
tag, single and executemany alike; a failing statement still raises as before. model: rows created,
updated and deleted through the ORM and through Core statements, once each, with the fields they set
and values redacted, on SQLite and PostgreSQL. redis: every command, pipeline and transaction of every
client of the process, with its duration, on a real Redis; never in the way of the command."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from deployer.settings import Settings
from deployer.store import tokens
from deployer.store.db import make_engine
from deployer.store.events import Publisher
from deployer.store.models import Deployment, DeploymentLog, utcnow
from tests.support.live import LiveServer
from traces.recorder.core import MASK, Recorder, Redaction
from traces.recorder.watchers import install_redis, install_sqlalchemy


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


def watched_engine(engine: Engine, *watchers: str, redaction: Redaction | None = None
                   ) -> tuple[Engine, Recorder, Kept]:  # fmt: skip
    watched = make_engine(engine.url.render_as_string(hide_password=False))
    sink = Kept()
    rec = Recorder(sink, watchers=frozenset(watchers), redaction=redaction or Redaction())
    install_sqlalchemy(watched, rec)
    return watched, rec, sink


def deployment(**over: Any) -> Deployment:
    now = utcnow()
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()), "name": "agent", "slug": f"t-{uuid.uuid4().hex[:12]}", "entity_type": "agent",
        "runtime": "python", "status": "queued", "env": {}, "memory_mb": 256, "cpu_millis": 500,
        "created_at": now, "updated_at": now, **over,
    }  # fmt: skip
    return Deployment(**fields)


def test_orm_inserts_updates_and_deletes_are_each_recorded_once_with_changed_fields_and_redacted_values(
    engine: Engine,
) -> None:
    watched, rec, sink = watched_engine(engine, "model", redaction=Redaction(body_keys=("password", "name")))
    d = deployment(name="do-not-show", env={"OPENAI_API_KEY": "sk-live-123"})
    with Session(watched) as session:
        session.add(d)
        session.commit()
        d.status, d.restart_count = "building", 1
        session.commit()
        assert d.status == "building"  # loaded again after the commit…
        d.status = "building"  # …and set to what it is: touched, not changed, no UPDATE
        session.commit()
        session.delete(d)
        session.commit()
    assert rec.flush()
    watched.dispose()
    models = [e for e in sink.entries if e["type"] == "model"]
    assert [(e["content"]["action"], e["content"]["model"]) for e in models] == [
        ("create", "Deployment"), ("update", "Deployment"), ("delete", "Deployment")]  # fmt: skip
    created, updated, deleted = (e["content"] for e in models)
    assert created["id"] == d.id and created["changes"]["slug"] == d.slug
    assert created["changes"]["name"] == MASK  # the recorder's redaction rules
    assert created["changes"]["env"] == {"OPENAI_API_KEY": MASK}  # a mapping shows its keys only
    assert updated["changes"] == {"status": "building", "restart_count": 1} and updated["id"] == d.id
    assert deleted["id"] == d.id and "changes" not in deleted
    assert all(e["tags"] == ["model:Deployment"] for e in models)
    assert "sk-live-123" not in json.dumps(sink.entries) and "do-not-show" not in json.dumps(sink.entries)


def test_core_statements_are_recorded_as_model_entries_and_still_run_once_beside_the_query_watcher(
    engine: Engine,
) -> None:
    watched, rec, sink = watched_engine(engine, "model", "query")
    dep, log = Deployment.__table__, DeploymentLog.__table__  # type: ignore[attr-defined]
    d = deployment()
    row = {c.key: getattr(d, c.key) for c in dep.columns if getattr(d, c.key) is not None}
    lines = [{"deployment_id": d.id, "line_no": n, "stream": "stdout", "text": f"hello {n}", "ts": utcnow()}
             for n in (1, 2, 3)]  # fmt: skip
    with watched.begin() as conn:
        conn.execute(insert(dep).values(**{**row, "env": {"TOKEN_OF_MINE": "s3cret"}}))
        conn.execute(insert(log), lines)
        conn.execute(update(dep).where(dep.c.id == d.id, dep.c.status == "queued").values(status="unpacking"))
        conn.execute(delete(dep).where(dep.c.id == "no-such-id"))
    with watched.connect() as conn:
        assert conn.execute(select(func.count()).select_from(log)).scalar() == 3  # executed once, not twice
    assert rec.flush()
    watched.dispose()
    models = [e["content"] for e in sink.entries if e["type"] == "model"]
    assert [(m["action"], m["model"], m["rows"]) for m in models] == [
        ("create", "Deployment", 1), ("create", "DeploymentLog", 3), ("update", "Deployment", 1),
        ("delete", "Deployment", 0)]  # fmt: skip
    assert models[0]["id"] == d.id and models[0]["changes"]["env"] == {"TOKEN_OF_MINE": MASK}
    assert models[1]["fields"] == ["deployment_id", "line_no", "stream", "text", "ts"]  # many rows: names only
    assert models[2]["changes"] == {"status": "unpacking"}  # not the WHERE clause's values
    assert "s3cret" not in json.dumps(sink.entries)
    assert sum(e["type"] == "query" for e in sink.entries) >= 5


@pytest.fixture
def redis_client(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_recorder() -> Any:
    sink = Kept()
    rec = Recorder(sink, watchers=frozenset({"redis"}))
    undo = install_redis(rec)
    assert undo is not None
    yield rec, sink
    undo()


def test_every_redis_command_pipeline_and_transaction_is_recorded_with_its_duration(
    redis_client: Any, redis_recorder: tuple[Recorder, Kept], redis_url: str
) -> None:
    rec, sink = redis_recorder
    key = f"trace-test:{uuid.uuid4().hex}"
    try:
        assert redis_client.set(key, "secret-value") and redis_client.get(key) == b"secret-value"
        with redis_client.pipeline() as pipe:  # MULTI … EXEC
            assert pipe.set(key + ":n", 1).incr(key + ":n").execute() == [True, 2]
        with redis_client.pipeline(transaction=False) as pipe:
            pipe.get(key).get(key + ":n").execute()
        with pytest.raises(redis.ResponseError):
            redis_client.incr(key)  # not an integer: raises as before, and is recorded as failed
        assert redis_client.register_script("return 7")() == 7
        Publisher(redis_url).status("dep-1", "running")  # the deployer's own client
    finally:
        redis_client.delete(key, key + ":n")
    assert rec.flush()
    got = [(e["content"]["command"], e["content"].get("commands")) for e in sink.entries]
    assert got[:5] == [("SET", None), ("GET", None), ("MULTI", ["SET", "INCRBY"]), ("PIPELINE", ["GET", "GET"]),
                       ("INCRBY", None)]  # fmt: skip
    assert ("EVALSHA", None) in got and got.count(("PUBLISH", None)) == 2
    assert all(e["type"] == "redis" and e["content"]["duration_ms"] >= 0 for e in sink.entries)
    failed = sink.entries[4]
    assert failed["content"]["error"] == "ResponseError" and "redis:failed" in failed["tags"]
    assert sink.entries[0]["tags"] == ["redis:SET"] and sink.entries[0]["content"]["connection"].endswith("/0")
    assert "secret-value" not in json.dumps(sink.entries)  # keys and values are never recorded


def test_the_redis_watcher_never_blocks_a_command_and_stops_when_undone(redis_client: Any) -> None:
    release = threading.Event()

    class Stuck(Kept):
        def write(self, entries: list[dict[str, Any]]) -> None:
            release.wait(10)
            super().write(entries)

    sink = Stuck()
    rec = Recorder(sink, watchers=frozenset({"redis"}), queue_size=5, batch=1)
    undo = install_redis(rec)
    assert undo is not None
    try:
        for _ in range(50):
            assert redis_client.ping()  # the writer is stuck: every command still answers
        assert rec.counters.dropped >= 40
    finally:
        undo()
        release.set()
    assert rec.flush()
    before = len(sink.entries)
    redis_client.ping()
    assert rec.flush() and len(sink.entries) == before  # undone: no longer recorded


def test_the_web_process_records_its_rows_and_redis_commands_when_the_watchers_are_on(
    make_live_server: Callable[..., LiveServer], settings: Settings, engine: Engine, redis_client: Any
) -> None:
    sink = Kept()
    rec = Recorder(sink, watchers=frozenset({"model", "redis"}))
    server = make_live_server(settings, recorder=rec)
    try:
        _, token = tokens.create_token(engine, "watched")
        resp = requests.get(f"{server.url}/api/deployments", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert resp.status_code == 200
        redis_client.ping()  # the web app hooked every Redis client of its process
        assert rec.flush()
        models = [e["content"] for e in sink.entries if e["type"] == "model"]
        assert [(m["action"], m["model"], sorted(m["changes"])) for m in models] == [
            ("update", "ApiToken", ["last_used_at"])]  # fmt: skip
        assert any(e["type"] == "redis" and e["content"]["command"] == "PING" for e in sink.entries)
    finally:
        undo = install_redis(rec)  # the same recorder again: hands back what undoes it
        assert undo is not None
        undo()
