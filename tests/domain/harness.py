"""A deployer wired to the fakes: SQLite in a temporary directory, in-memory Docker and Caddy, a clock
that moves when told, and a driver that runs the boot pipeline the way the Celery chain does."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from deployer.bundles.secrets import MasterKey
from deployer.bundles.uploads import Upload, accept_upload
from deployer.context import Context
from deployer.lifecycle import images
from deployer.lifecycle.drain import drain
from deployer.lifecycle.stages import run_stage, stages_from
from deployer.lifecycle.teardown import fail
from deployer.settings import Settings
from deployer.store import rows
from deployer.store.deployments import request_restart, request_stop
from deployer.store.rows import DEPLOYMENT_LOG
from deployer.store.states import Status
from tests.support.fakes import FakeBuilder, FakeClock, FakeProxy, FakeRuntime, fake_http
from tests.support.zips import KEYPAIR, agent_zip

Pair = tuple[Status, Status]

# Every transition any test of the tier made, for the test that holds the tier to the whole table.
SEEN: set[Pair] = set()


@dataclass
class World:
    settings: Settings
    engine: Engine
    master_key: MasterKey
    clock: FakeClock = field(default_factory=FakeClock)
    runtime: FakeRuntime = field(default_factory=FakeRuntime)
    proxy: FakeProxy = field(default_factory=FakeProxy)
    last: dict[str, Status] = field(default_factory=dict)
    moves: list[tuple[str, Status, Status]] = field(default_factory=list)
    handed: dict[str, tuple[str, Status]] = field(default_factory=dict)  # claimed rows not driven yet

    def __post_init__(self) -> None:
        self.builder = FakeBuilder(self.runtime)
        self.http = fake_http(self.runtime)
        for runtime in ("python", "node"):
            for kind in ("agent", "service"):
                self.runtime.images.add(images.base_for(self.settings, runtime, kind))
        self.ctx = self.context()

    def context(self, **changes: Any) -> Context:
        """The Context a worker would build, on the fakes (`changes` replace settings)."""
        settings = dataclasses.replace(self.settings, **changes) if changes else self.settings
        return Context(settings=settings, engine=self.engine, master_key=self.master_key, docker=self.runtime,
                       caddy=None if settings.skip_caddy else self.proxy, http=self.http, now=self.clock,
                       on_transition=self.record, installation="domain-tier", build_image=self.builder)  # fmt: skip

    def reconfigure(self, **changes: Any) -> None:
        self.ctx = self.context(**changes)

    def record(self, deployment_id: str, to: Status) -> None:
        before = self.last.get(deployment_id, Status.QUEUED)
        SEEN.add((before, to))
        self.moves.append((deployment_id, before, to))
        self.last[deployment_id] = to

    # ---- what users and the beat do ---------------------------------------------------------------

    def upload(self, bundle: bytes | None = None, **fields: Any) -> str:
        fields.setdefault("keypair", KEYPAIR)
        up = Upload(bundle=io.BytesIO(bundle or agent_zip()), **fields)
        accepted = accept_upload(up, settings=self.ctx.settings, engine=self.engine, master_key=self.master_key,
                                 now=self.clock)  # fmt: skip
        self.last[accepted.id] = Status.QUEUED
        return accepted.id

    def claim(self) -> list[tuple[str, str, Status]]:
        """One drain pass: what it handed to drivers (deployment, token, status to start from)."""
        sent: list[tuple[str, str, Status]] = []
        drain(self.ctx, lambda dep, token, status: sent.append((dep, token, status)))
        self.handed.update((dep, (token, status)) for dep, token, status in sent)
        return sent

    def drive(self, deployment_id: str, *, through: Status = Status.RUNNING) -> Status:
        """Claim the row and run its stages up to `through`, as the chain would: a stage that raises
        fails the row under this driver's token, one that returns False ends the chain quietly."""
        if deployment_id not in self.handed:
            self.claim()
        assert deployment_id in self.handed, f"drain did not hand {deployment_id} out"
        token, start = self.handed.pop(deployment_id)
        self.run(deployment_id, token, stages_from(start), through=through)
        return self.status(deployment_id)

    def run(self, deployment_id: str, token: str, stages: Iterable[Status], *, through: Status) -> None:
        for stage in stages:
            try:
                proceed = run_stage(self.ctx, stage, deployment_id, token)
            except Exception as exc:  # what the chain's error callback does
                message = getattr(exc, "message", None) or f"{stage.value} failed: {type(exc).__name__}: {exc}"
                fail(self.ctx, deployment_id, message, driver_token=token)
                return
            if not proceed or stage is through:
                return

    def stop(self, deployment_id: str) -> str:
        return request_stop(self.engine, deployment_id, now=self.clock, on_transition=self.ctx.on_transition)

    def restart(self, deployment_id: str) -> str:
        return request_restart(self.engine, deployment_id, max_active=self.ctx.settings.max_active, now=self.clock,
                               on_transition=self.ctx.on_transition)  # fmt: skip

    # ---- what tests look at -----------------------------------------------------------------------

    def row(self, deployment_id: str) -> dict[str, Any]:
        found = rows.load(self.engine, deployment_id)
        assert found is not None
        return dict(found)

    def status(self, deployment_id: str) -> Status:
        return Status(self.row(deployment_id)["status"])

    def log(self, deployment_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(DEPLOYMENT_LOG.c.text).where(DEPLOYMENT_LOG.c.deployment_id == deployment_id)
                .order_by(DEPLOYMENT_LOG.c.line_no)
            ).scalars())  # fmt: skip

    def container(self, deployment_id: str) -> Any:
        return self.runtime.containers.get(f"deployer-{deployment_id}")

    def holds_nothing(self, deployment_id: str) -> bool:
        """No container, route, port or driver left behind."""
        from deployer.store.rows import PORTS

        with self.engine.connect() as conn:
            port = conn.execute(select(PORTS.c.port).where(PORTS.c.deployment_id == deployment_id)).first()
        row = self.row(deployment_id)
        live = [c for c in self.runtime.containers.list(all=True) if c.name == f"deployer-{deployment_id}"]
        return (port is None and not live and f"deployer-{deployment_id}" not in self.proxy.routes
                and row["container_id"] is None and row["driver_token"] is None)  # fmt: skip
