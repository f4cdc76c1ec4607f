"""The fast domain tier: lifecycle rules on SQLite and in-memory fakes; no Docker, Redis, Caddy or PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.bundles.secrets import ensure_master_key
from deployer.settings import load_settings
from deployer.store.db import make_engine
from tests.domain.harness import World, template_database

COVERAGE_TEST = "test_every_allowed_transition_is_exercised_by_the_tier"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template_database(tmp_path_factory.mktemp("template") / "deployer.sqlite")


@pytest.fixture(scope="session", autouse=True)
def _prune_deployment_networks() -> Iterator[None]:
    """Nothing here touches Docker: the root suite's network pruning has nothing to do."""
    yield


@pytest.fixture
def world(tmp_path: Path, migrated_sqlite: Path) -> Iterator[World]:
    db = tmp_path / "deployer.sqlite"
    shutil.copyfile(migrated_sqlite, db)
    settings = load_settings({
        "DEPLOYER_DATA_ROOT": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{db}",
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
        "DEPLOYER_PORT_MIN": "20000",
        "DEPLOYER_PORT_MAX": "20099",
        "DEPLOYER_STAGE_LEASE_SEC": "30",
        "DEPLOYER_STOP_GRACE_SEC": "1",
    })  # fmt: skip
    engine = make_engine(settings.database_url)
    w = World(settings, engine, ensure_master_key(settings.age_identity_path))
    yield w
    w.http.close()
    engine.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The transition coverage test judges what the others did, so it runs after them."""
    last = [i for i in items if i.name == COVERAGE_TEST]
    items[:] = [i for i in items if i.name != COVERAGE_TEST] + last
