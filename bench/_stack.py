"""A deployer stack for benchmarks: the same real processes the integration tests use."""

from __future__ import annotations

import os
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import redis
from sqlalchemy import create_engine, make_url, text

from deployer.lifecycle.images import ensure_base_images
from deployer.settings import Settings, load_settings
from deployer.store import tokens
from deployer.store.db import make_engine, upgrade
from tests.support.live import LiveServer
from tests.support.stack import Api, Caddy, CeleryProcess, WatcherProcess
from web import create_app


@dataclass
class BenchStack:
    settings: Settings
    engine: Any
    api: Api
    docker: Any
    caddy: Caddy


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(name: str, values: list[float]) -> str:
    return (f"{name}: n={len(values)} p50={percentile(values, 50):.0f} ms p95={percentile(values, 95):.0f} ms "
            f"mean={statistics.fmean(values):.0f} ms")  # fmt: skip


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database on the test server, dropped afterwards."""
    pg = os.environ["DEPLOYER_TEST_DATABASE_URL"]
    name = f"deployer_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = make_url(pg).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(db)
    upgrade(engine)
    engine.dispose()
    try:
        yield db
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def bench_stack(concurrency: int = 8, **env: str) -> Iterator[BenchStack]:
    with fresh_database() as db:
        yield from _bench_stack(db, concurrency, env)


def _bench_stack(db: str, concurrency: int, env: dict[str, str]) -> Iterator[BenchStack]:
    broker = os.environ["DEPLOYER_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(broker).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="deployer-bench-"))
    caddy = Caddy(tmp / "caddy")
    settings = load_settings({
        "DEPLOYER_DATA_ROOT": str(tmp / "data"), "DATABASE_URL": db, "CELERY_BROKER_URL": broker,
        "CADDY_ADMIN_URL": caddy.admin_url, "CADDY_HTTP_LISTEN": f"127.0.0.1:{caddy.http_port}",
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test", "DEPLOYER_PUBLIC_SCHEME": "http", "DEPLOYER_MAX_ACTIVE": "200",
        "DEPLOYER_STOP_GRACE_SEC": "1", "DEPLOYER_CONTAINER_MEM_MB": "256", "DEPLOYER_PORT_MIN": "17000",
        "DEPLOYER_PORT_MAX": "17999", "DEPLOYER_WORKER_CONCURRENCY": str(concurrency),
        "REDIS_URL": os.environ["DEPLOYER_TEST_REDIS_URL"], "DEPLOYER_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        "DEPLOYER_LOG_RATE_LINES": "0", **env,
    })  # fmt: skip
    engine = make_engine(db)
    client = docker.from_env(timeout=600)
    ensure_base_images(client, settings, lambda _line: None)
    worker = CeleryProcess(settings, "worker", tmp / "logs")
    beat = CeleryProcess(settings, "beat", tmp / "logs")
    watcher = WatcherProcess(settings, tmp / "logs")
    server = LiveServer(create_app(settings))
    api = Api(server.url, tokens.create_token(engine, "bench")[1])
    try:
        yield BenchStack(settings, engine, api, client, caddy)
    finally:
        server.close()
        worker.stop()
        beat.stop()
        watcher.stop()
        for c in client.containers.list(all=True, filters={"label": "deployer.managed=true"}):
            if c.name.startswith("deployer-"):
                c.remove(force=True)
        caddy.close()
        engine.dispose()
        server.app.extensions["deployer"].engine.dispose()
