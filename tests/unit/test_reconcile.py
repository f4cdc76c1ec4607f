"""Reconcile's judgement of running rows against a Docker that moves while it looks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from deployer.lifecycle.context import Context
from deployer.settings import load_settings
from deployer.store.db import make_engine, upgrade
from deployer.store.models import Deployment
from deployer.supervision.reconcile import reconcile_runtime
from tests.support.rows import make_deployment_row

_dep = Deployment.__table__  # type: ignore[attr-defined]


@dataclass
class FakeContainer:
    id: str
    status: str
    labels: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=lambda: {"State": {"ExitCode": 0, "Running": True}})
    name: str = "c"

    def logs(self, **_: Any) -> bytes:
        return b""


class FakeContainers:
    """A listing taken before a container started, and inspection that sees the present."""

    def __init__(self, listed: list[FakeContainer], present: dict[str, FakeContainer]) -> None:
        self.listed, self.present = listed, present

    def list(self, **_: Any) -> list[FakeContainer]:
        return self.listed

    def get(self, name_or_id: str) -> FakeContainer:
        import docker.errors

        if name_or_id not in self.present:
            raise docker.errors.NotFound("gone")
        return self.present[name_or_id]


class FakeDocker:
    def __init__(self, containers: FakeContainers) -> None:
        self.containers = containers


def _ctx(tmp_path: Path, docker: FakeDocker) -> Context:
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_SKIP_CADDY": "true"})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return Context(settings=settings, engine=engine, master_key=None, docker=docker, caddy=None,  # type: ignore[arg-type]
                   installation="t")  # fmt: skip


def _status(ctx: Context, dep: str) -> str:
    with ctx.engine.connect() as conn:
        return str(conn.execute(select(_dep.c.status).where(_dep.c.id == dep)).scalar_one())


def test_a_container_started_after_the_listing_is_not_taken_for_missing(tmp_path: Path) -> None:
    fresh = FakeContainer("fresh", "running")
    ctx = _ctx(tmp_path, FakeDocker(FakeContainers(listed=[], present={"fresh": fresh})))
    dep = make_deployment_row(ctx.engine, status="running", container_id="fresh")
    assert reconcile_runtime(ctx).crashed == []
    assert _status(ctx, dep) == "running"


def test_a_running_row_whose_container_is_really_gone_is_crashed(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, FakeDocker(FakeContainers(listed=[], present={})))
    dep = make_deployment_row(ctx.engine, status="running", container_id="gone")
    assert reconcile_runtime(ctx).crashed == [dep]
    assert _status(ctx, dep) == "crashed"
