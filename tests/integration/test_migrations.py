from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import deployer.store.models  # noqa: F401
from deployer.store.db import downgrade, make_engine, upgrade

TABLES = {"deployment", "deployment_log", "deployment_metric", "port_allocation", "api_token", "alembic_version"}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        make: Callable[[], str] = request.getfixturevalue("new_pg_database")
        url = make()
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_creates_every_table(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    assert set(inspect(empty_engine).get_table_names()) == TABLES


def test_downgrade_to_base_then_upgrade_again_round_trips(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    downgrade(empty_engine, "base")
    assert set(inspect(empty_engine).get_table_names()) == {"alembic_version"}
    upgrade(empty_engine)
    assert set(inspect(empty_engine).get_table_names()) == TABLES


def test_the_migrations_match_the_models_exactly(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_the_log_table_enforces_unique_line_numbers_and_ports_are_unique(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    insp = inspect(empty_engine)
    log_uniques = [sorted(u["column_names"]) for u in insp.get_unique_constraints("deployment_log")]
    assert ["deployment_id", "line_no"] in log_uniques
    assert insp.get_pk_constraint("port_allocation")["constrained_columns"] == ["port"]
    port_uniques = [u["column_names"] for u in insp.get_unique_constraints("port_allocation")]
    port_unique_idx = [i["column_names"] for i in insp.get_indexes("port_allocation") if i["unique"]]
    assert ["deployment_id"] in port_uniques + port_unique_idx
