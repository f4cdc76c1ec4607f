"""Two installations on one Docker engine (a staging deployer, a test run): each touches only what it
labelled itself."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import docker.errors

from deployer.context import build_context
from deployer.localkeys import installation_id
from deployer.supervision.reconcile import reconcile_runtime
from tests.integration.conftest import Stack


def _labelled(docker: Any, image: str, installation: str) -> Any:
    labels = {"deployer.managed": "true", "deployer.deployment": str(uuid.uuid4()), "deployer.kind": "agent",
              "deployer.installation": installation}  # fmt: skip
    return docker.containers.run(image, ["sleep", "600"], detach=True, labels=labels)


def test_reconcile_removes_its_own_orphans_and_never_another_installations_containers(stack: Stack) -> None:
    image = stack.settings.agent_base_image
    neighbours = _labelled(stack.docker, image, "elsewhere")
    orphan = _labelled(stack.docker, image, installation_id(stack.settings))
    try:
        ctx = build_context(stack.settings, engine=stack.engine, docker=stack.docker)
        report = reconcile_runtime(ctx)
        assert orphan.name in report.removed and neighbours.name not in report.removed
        neighbours.reload()
        assert neighbours.status == "running"  # a minute later it would still be there: it is not ours
    finally:
        for c in (neighbours, orphan):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)
