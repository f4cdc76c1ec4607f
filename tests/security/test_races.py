"""Late and repeated signals about a deployment must not undo what has happened since, and a chatty
deployment cannot flood the log store."""

from __future__ import annotations

import re

import pytest

from deployer.context import build_context
from deployer.lifecycle.teardown import fail
from tests.integration.conftest import Stack
from tests.integration.test_supervision import PRINTER, running
from tests.support.stack import wait_for

pytestmark = pytest.mark.timeout(600)


def test_a_late_errback_leaves_a_running_deployment_running(stack: Stack) -> None:
    dep = running(stack, PRINTER, LINES="1", PAUSE="0")
    ctx = build_context(stack.settings, engine=stack.engine, docker=stack.docker)
    # what the errback of a superseded driver, or one arriving after `running`, does
    assert fail(ctx, dep, "registering_route failed: late", driver_token="a-driver-long-gone") is False
    assert fail(ctx, dep, "health_checking failed: later still") is False
    row = stack.api.row(dep)
    assert row["status"] == "running" and row["error_message"] is None
    container = stack.container(dep)
    assert container is not None and container.status == "running"
    assert f"deployment-{dep}" in stack.routes() and stack.port_rows(dep) == 1
    stack.api.post(f"/api/deployments/{dep}/stop")


def test_a_chatty_deployment_is_capped_and_every_dropped_line_is_counted(stack: Stack) -> None:
    stack.restart_watcher(DEPLOYER_LOG_RATE_LINES="100", DEPLOYER_LOG_BURST_LINES="500")
    try:
        dep = running(stack, PRINTER, LINES="20000", PAUSE="0")

        def accounted() -> tuple[int, int] | None:
            lines = stack.api.get(f"/api/deployments/{dep}/logs", limit=2000).json()["lines"]
            stored = sum(1 for ln in lines if ln["stream"] != "system")  # 20 000 lines out, then one on stderr
            dropped = sum(int(m.group(1)) for ln in lines if ln["stream"] == "system"
                          and (m := re.match(r"(\d+) output lines dropped", ln["text"])))  # fmt: skip
            seen.append((stored, dropped, len(lines)))
            return (stored, dropped) if stored + dropped == 20001 else None

        seen: list[tuple[int, int, int]] = []
        try:
            stored, dropped = wait_for(accounted, timeout=60, what="every line stored or counted", interval=0.5)
        except AssertionError:
            raise AssertionError(f"stored, dropped, lines read: {seen[-1]}") from None
        assert 500 <= stored < 2000 and dropped > 18000
        stack.api.post(f"/api/deployments/{dep}/stop")
    finally:
        stack.restart_watcher()
