"""A user's stop is never recorded as a crash, however close it follows a transition, and a real
kill is never hidden as a stop (exit 143 after a user stop is a stop)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from deployer.store.tables import DEPLOYMENT as _dep
from tests.integration.conftest import Stack
from tests.integration.test_lifecycle import SERVER, agent_bundle
from tests.support.stack import wait_for

pytestmark = pytest.mark.timeout(1200)

ROUNDS = 50
BOOT_TAIL = ("health_checking", "registering_route", "running")
SETTLED = ("stopped", "crashed", "failed")


def _status(stack: Stack, dep: str) -> str:
    with stack.engine.connect() as conn:
        return str(conn.execute(select(_dep.c.status).where(_dep.c.id == dep)).scalar_one())


def _restart_and_catch(stack: Stack, dep: str, target: str) -> str:
    """Restarts the deployment and returns as soon as the row is seen at `target` or a later state
    (read straight from the database, so the stop lands within a few milliseconds of it)."""
    wait_for(lambda: stack.api.post(f"/api/deployments/{dep}/restart").status_code == 202, timeout=60,
             what="the restart to be accepted")  # fmt: skip
    later = BOOT_TAIL[BOOT_TAIL.index(target):] + SETTLED
    return str(wait_for(lambda: (s := _status(stack, dep)) in later and s, timeout=120, interval=0.002,
                        what=f"{dep} to reach {target}"))  # fmt: skip


def _story(stack: Stack, dep: str) -> str:
    """The deployment's last lines, and what the worker and watcher logged about it."""
    ours = [ln for p in sorted(stack.logdir.glob("*.log")) for ln in p.read_text(errors="replace").splitlines()
            if dep in ln or "exit" in ln]  # fmt: skip
    return "\n".join([*stack.api.lines(dep)[-40:], "--- processes:", *ours[-60:]])


def _settled(stack: Stack, dep: str) -> dict[str, object]:
    row = stack.api.wait_status(dep, *SETTLED, timeout=120)
    wait_for(lambda: stack.container(dep) is None and stack.port_rows(dep) == 0, timeout=60, what="teardown")
    return row


def test_stops_right_after_running_or_during_the_last_boot_stages_always_end_stopped(stack: Stack) -> None:
    dep = stack.api.upload(agent_bundle(SERVER, "stop race")).json()["id"]
    assert stack.api.wait_status(dep, "running", "failed")["status"] == "running"
    stack.api.post(f"/api/deployments/{dep}/stop")
    _settled(stack, dep)
    seen: dict[str, int] = {}
    for target in itertools.islice(itertools.cycle(BOOT_TAIL), ROUNDS):
        at = _restart_and_catch(stack, dep, target)
        seen[at] = seen.get(at, 0) + 1
        assert stack.api.post(f"/api/deployments/{dep}/stop").status_code == 202
        row = _settled(stack, dep)
        assert row["status"] == "stopped", _story(stack, dep)
    assert seen.get("running", 0) >= ROUNDS // 3, seen  # the stops really landed right after running

    # A kill after those stops: the watcher handles events in order, so once this crash is recorded
    # every `die` of the stops above has been judged too — and none of them may have been a crash.
    at = _restart_and_catch(stack, dep, "running")
    assert at == "running", at
    container = stack.container(dep)
    assert container is not None
    container.kill()
    row = stack.api.wait_status(dep, "crashed", "failed", timeout=60)
    assert row["status"] == "crashed" and row["last_exit_code"] == 137
    lines = stack.api.lines(dep)
    assert sum(ln.startswith("status: crashed") for ln in lines) == 1, "\n".join(lines[-60:])
    assert not any(ln.startswith("status: failed") for ln in lines)


def test_a_kill_right_after_running_is_still_a_crash_with_exit_137(stack: Stack) -> None:
    dep = stack.api.upload(agent_bundle(SERVER, "kill race")).json()["id"]
    assert stack.api.wait_status(dep, "running", "failed")["status"] == "running"
    stack.api.post(f"/api/deployments/{dep}/stop")
    _settled(stack, dep)
    for _ in range(5):
        assert _restart_and_catch(stack, dep, "running") == "running"
        container = stack.container(dep)
        assert container is not None
        container.kill()
        row = _settled(stack, dep)
        assert row["status"] == "crashed" and row["last_exit_code"] == 137, "\n".join(stack.api.lines(dep)[-40:])
        assert row["error_message"] == "Container exited 137"
