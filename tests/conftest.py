"""Shared fixtures: real PostgreSQL and Redis from env URLs when set, testcontainers otherwise.

Nothing here skips: without a server and without Docker images for testcontainers, the tests that
need them error out, loudly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from deployer.bundles.secrets import MasterKey, ensure_master_key
from deployer.settings import Settings, load_settings
from deployer.store.db import make_engine, upgrade
from tests.support.live import LiveServer

TABLES = ("deployment_log", "deployment_metric", "port_allocation", "deployment", "api_token")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server whose user may create databases."""
    url = os.environ.get("DEPLOYER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer("postgres:16", driver="psycopg") as pg:
        yield pg.get_connection_url()


@pytest.fixture(scope="session")
def new_pg_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the server; drops them all at the end of the session."""
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"deployer_t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_url(new_pg_database: Callable[[], str]) -> str:
    """One migrated database shared by the session; tests get it emptied (`pg_engine`)."""
    url = new_pg_database()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    _empty(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'deployer.sqlite'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    request.getfixturevalue("pg_engine")  # empties the shared database
    pg: str = request.getfixturevalue("pg_url")
    return pg


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return {
        "DEPLOYER_DATA_ROOT": str(tmp_path / "data"),
        "DATABASE_URL": db_url,
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
    }


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    return load_settings(settings_env)


@pytest.fixture
def master_key(settings: Settings) -> MasterKey:
    return ensure_master_key(settings.age_identity_path)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("DEPLOYER_TEST_REDIS_URL")
    if url:
        yield url
        return
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.community.redis import RedisContainer

    with RedisContainer("redis:7") as r:
        yield f"redis://{r.get_container_host_ip()}:{r.get_exposed_port(6379)}/0"


@pytest.fixture
def make_live_server() -> Iterator[Callable[..., LiveServer]]:
    """Starts the real app on a loopback port; `make(settings, **collaborators)`."""
    from web import create_app

    servers: list[LiveServer] = []

    def make(settings: Settings, **kwargs: Any) -> LiveServer:
        server = LiveServer(create_app(settings, **kwargs))
        servers.append(server)
        return server

    yield make
    for s in servers:
        hub = s.app.extensions["deployer"].hub
        if hub is not None:
            hub.stop()
        s.close()
        s.app.extensions["deployer"].engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _prune_deployment_networks() -> Iterator[None]:
    """Each test installation makes its own deployment network; Docker's address pools hold only a few
    dozen bridges, so unused ones go at the end (one in use by a concurrent run is left alone, and
    re-made by its next start if it went)."""
    yield
    try:
        import docker

        docker.from_env(timeout=60).networks.prune(filters={"label": "deployer.managed=true"})
    except Exception as exc:  # no Docker on this machine: nothing was made
        print(f"network prune skipped: {exc!r}")
