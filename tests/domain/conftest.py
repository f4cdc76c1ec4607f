"""The fast domain tier: lifecycle rules on SQLite and in-memory fakes; no Docker, Redis, Caddy or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from deployer.bundles.secrets import ensure_master_key
from deployer.settings import load_settings
from deployer.store.db import make_engine, upgrade
from tests.conftest import TABLES
from tests.domain.harness import World

COVERAGE_TEST = "test_every_allowed_transition_is_exercised_by_the_tier"


@pytest.fixture(scope="session")
def tier_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite database for the tier, emptied for each test: an engine per test would
    compile every statement again, which costs more than the tests themselves."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('tier') / 'deployer.sqlite'}")
    upgrade(engine)
    # The database dies with the tier: waiting for the disk on every commit only slows it down.
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA synchronous=OFF"))
    engine.dispose()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _prune_deployment_networks() -> Iterator[None]:
    """Nothing here touches Docker: the root suite's network pruning has nothing to do."""
    yield


@pytest.fixture
def world(tmp_path: Path, tier_engine: Engine) -> Iterator[World]:
    with tier_engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    settings = load_settings({
        "DEPLOYER_DATA_ROOT": str(tmp_path / "data"),
        "DATABASE_URL": tier_engine.url.render_as_string(hide_password=False),
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
        "DEPLOYER_PORT_MIN": "20000",
        "DEPLOYER_PORT_MAX": "20099",
        "DEPLOYER_STAGE_LEASE_SEC": "30",
        "DEPLOYER_STOP_GRACE_SEC": "1",
    })  # fmt: skip
    w = World(settings, tier_engine, ensure_master_key(settings.age_identity_path))
    yield w
    w.http.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The transition coverage test judges what the others did, so it runs after them."""
    last = [i for i in items if i.name == COVERAGE_TEST]
    items[:] = [i for i in items if i.name != COVERAGE_TEST] + last
