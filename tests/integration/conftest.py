"""A whole deployer on real services for lifecycle tests: Postgres, Redis broker, Docker, Caddy,
a Celery worker and beat as separate processes, and the web app on a loopback port."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, select

from deployer.lifecycle import containers
from deployer.lifecycle.caddy import CaddyAdmin
from deployer.lifecycle.images import ensure_base_images
from deployer.settings import Settings, load_settings
from deployer.store import tokens
from deployer.store.db import make_engine, upgrade
from deployer.store.models import Deployment
from tests.support.live import LiveServer
from tests.support.stack import Api, Caddy, CeleryProcess, WatcherProcess

_dep = Deployment.__table__  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def docker_client() -> Any:
    import docker

    return docker.from_env(timeout=600)


# Containers reach package indexes through the machine's TLS-intercepting proxy here: builds trust its CA.
MACHINE_CA = "/etc/ssl/certs/ca-certificates.crt"
BUILD_ENV = {"DEPLOYER_BUILD_CA_BUNDLE": MACHINE_CA} if Path(MACHINE_CA).is_file() else {}


@pytest.fixture(scope="session")
def base_images(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The four runtime bases by today's recipe; bootstrapped offline from Debian once per machine when no
    registry answers, rebuilt when their recipe changed, else reused."""
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path_factory.mktemp("images")), **BUILD_ENV})
    ensure_base_images(docker_client, settings, lambda line: print(line))


@pytest.fixture(scope="session")
def caddy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caddy]:
    c = Caddy(tmp_path_factory.mktemp("caddy"))
    yield c
    c.close()


@dataclass
class Stack:
    settings: Settings
    engine: Engine
    api: Api
    docker: Any
    caddy: Caddy
    logdir: Path
    worker: CeleryProcess
    beat: CeleryProcess
    watcher: WatcherProcess

    def restart_worker(self) -> None:
        self.worker = CeleryProcess(self.settings, "worker", self.logdir)

    @contextmanager
    def worker_with(self, **changes: Any) -> Iterator[None]:
        """The worker replaced by one whose settings differ by `changes`, then the usual one again."""
        self.worker.stop()
        self.worker = CeleryProcess(dataclasses.replace(self.settings, **changes), "worker", self.logdir)
        try:
            yield
        finally:
            self.worker.stop()
            self.restart_worker()

    def restart_watcher(self, **env: str) -> None:
        self.watcher.stop()
        self.watcher = WatcherProcess(self.settings, self.logdir, **env)

    def container(self, deployment_id: str) -> Any | None:
        return containers.get(self.docker, containers.container_name(deployment_id))

    def port_rows(self, deployment_id: str) -> int:
        from deployer.store.models import PortAllocation

        table = PortAllocation.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return len(conn.execute(select(table).where(table.c.deployment_id == deployment_id)).all())

    def routes(self) -> list[str]:
        return self.caddy.route_ids(self.settings.caddy_server_name)


def stack_settings(base: dict[str, str], **overrides: str) -> Settings:
    return load_settings({**base, **overrides})


@pytest.fixture(scope="session")
def stack_env(
    tmp_path_factory: pytest.TempPathFactory, new_pg_database: Callable[[], str], redis_url: str, caddy: Caddy
) -> dict[str, str]:
    return make_stack_env(tmp_path_factory, new_pg_database, redis_url, caddy, ports_from=15000)


def make_stack_env(tmp_path_factory: pytest.TempPathFactory, new_pg_database: Callable[[], str], redis_url: str,
                   caddy: Caddy, *, ports_from: int) -> dict[str, str]:  # fmt: skip
    """A stack's settings: its own database, broker db, queue and Caddy server, and its own port range
    (stacks of several test folders may be alive at once)."""
    db = new_pg_database()
    engine = make_engine(db)
    upgrade(engine)
    engine.dispose()
    broker = redis_url.rsplit("/", 1)[0] + "/5"
    redis.Redis.from_url(broker).flushdb()
    lo = ports_from
    return {
        "DEPLOYER_DATA_ROOT": str(tmp_path_factory.mktemp("stack") / "data"),
        "DATABASE_URL": db,
        "CELERY_BROKER_URL": broker,
        "CADDY_ADMIN_URL": caddy.admin_url,
        "CADDY_HTTP_LISTEN": f"127.0.0.1:{caddy.http_port}",
        "CADDY_SERVER_NAME": f"test-{uuid.uuid4().hex[:8]}",
        "DEPLOYER_QUEUE": f"test-{uuid.uuid4().hex[:8]}",  # a stray worker of another run cannot take our tasks
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
        "DEPLOYER_PUBLIC_SCHEME": "http",
        "DEPLOYER_STAGE_LEASE_SEC": "5",
        "DEPLOYER_HEALTH_INTERVAL_SEC": "1",
        "DEPLOYER_BOOT_HEALTH_TIMEOUT_MS": "10000",
        "DEPLOYER_STOP_GRACE_SEC": "2",
        "DEPLOYER_CONTAINER_MEM_MB": "256",
        "DEPLOYER_CONTAINER_CPU_MILLIS": "500",
        "DEPLOYER_PORT_MIN": str(lo),
        "DEPLOYER_PORT_MAX": str(lo + 999),
        "DEPLOYER_LOG_RATE_LINES": "0",  # the log tests print 200 000 lines at full speed; the budget has its own
        **BUILD_ENV,
    }


@pytest.fixture(scope="session")
def stack(stack_env: dict[str, str], base_images: None, docker_client: Any, caddy: Caddy,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # fmt: skip
    from web import create_app

    settings = stack_settings(stack_env)
    engine = make_engine(settings.database_url)
    logdir = tmp_path_factory.mktemp("stack-logs")
    started: list[Any] = []
    current: Stack | None = None
    try:
        started.append(CeleryProcess(settings, "worker", logdir))
        started.append(CeleryProcess(settings, "beat", logdir))
        started.append(WatcherProcess(settings, logdir))
        started.append(LiveServer(create_app(settings)))
        worker, beat, watcher, server = started
        api = Api(server.url, tokens.create_token(engine, f"stack-{uuid.uuid4().hex[:6]}")[1])
        current = Stack(settings, engine, api, docker_client, caddy, logdir, worker, beat, watcher)
        yield current
    finally:
        # stop whatever started, even when setup failed half way: a stray worker would eat later tasks
        if current is not None:  # the worker and watcher a test may have replaced
            started += [current.worker, current.watcher]
        for proc in reversed(started):
            try:
                if isinstance(proc, LiveServer):
                    proc.close()
                    proc.app.extensions["deployer"].engine.dispose()
                else:
                    proc.stop()
            except Exception as exc:  # keep stopping the others
                print(f"stopping {proc}: {exc!r}")
    with engine.connect() as conn:
        ids = [str(i) for i in conn.execute(select(_dep.c.id)).scalars()]
    for dep in ids:
        containers.remove(docker_client, containers.container_name(dep), grace_sec=0)
    admin = CaddyAdmin(settings.caddy_admin_url, settings.caddy_server_name, settings.data_root / "caddy.lock")
    for dep in ids:
        admin.remove_route(dep)
    engine.dispose()
