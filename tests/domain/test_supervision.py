"""A running deployment afterwards: crashes, the restart policy, health probes, stop and restart."""

from __future__ import annotations

import pytest

from deployer.lifecycle.teardown import reconcile_stops
from deployer.store.states import Status
from deployer.supervision.crashes import Exit, handle_exit
from deployer.supervision.probes import FAILURES_TO_UNHEALTHY, probe_all
from deployer.supervision.reconcile import reconcile_runtime
from tests.domain.harness import World
from watcher.restarts import due_restarts


def running(world: World) -> str:
    dep = world.upload()
    assert world.drive(dep) is Status.RUNNING
    return dep


def die(world: World, dep: str, exit_code: int, *, oom: bool = False) -> str:
    container = world.container(dep)
    container.die(exit_code, oom=oom)
    return handle_exit(world.ctx, Exit(dep, container.id, exit_code, oom))


def make_unhealthy(world: World, dep: str) -> None:
    world.container(dep).behaviour.healthy = False
    for _ in range(FAILURES_TO_UNHEALTHY):
        probe_all(world.ctx, session=world.http)
    assert world.status(dep) is Status.UNHEALTHY


def test_a_container_that_exits_crashes_the_deployment_with_its_exit_code_and_last_output(world: World) -> None:
    world.runtime.behaviour.output = ["serving on :8000", "fatal: lost the database"]
    dep = running(world)
    assert die(world, dep, 1) == "crashed"
    row = world.row(dep)
    assert (row["status"], row["last_exit_code"], row["error_message"]) == ("crashed", 1, "Container exited 1")
    log = world.log(dep)
    assert "container state: exit code 1, OOM-killed False, error " in log
    assert "last output (2 lines):" in log and "restart policy is 'no': left crashed" in log
    assert world.holds_nothing(dep)


def test_an_oom_killed_container_crashes_with_the_memory_limit_in_the_reason(world: World) -> None:
    dep = running(world)
    assert die(world, dep, 137, oom=True) == "crashed"
    row = world.row(dep)
    assert row["error_message"] == f"Container OOM-killed (memory limit {row['memory_mb']} MB)"
    assert "no output" in world.log(dep)


def test_a_crashed_container_is_kept_for_inspection_when_the_settings_say_so(world: World) -> None:
    world.reconfigure(keep_crashed_containers=True)
    dep = running(world)
    die(world, dep, 2)
    assert world.container(dep).status == "exited"
    assert world.row(dep)["container_id"] is None  # no longer counted as the row's


def test_a_repeated_exit_event_is_ignored(world: World) -> None:
    dep = running(world)
    cid = world.container(dep).id
    assert die(world, dep, 1) == "crashed"
    assert handle_exit(world.ctx, Exit(dep, cid, 1, False)) == "ignored"


def test_an_exit_event_of_a_container_that_still_runs_is_ignored(world: World) -> None:
    dep = running(world)
    assert handle_exit(world.ctx, Exit(dep, world.container(dep).id, 0, False)) == "ignored"
    assert world.status(dep) is Status.RUNNING


def test_a_container_that_dies_while_booting_fails_the_deployment(world: World) -> None:
    world.runtime.behaviour.output = ["Traceback", "SyntaxError"]
    dep = world.upload()
    world.drive(dep, through=Status.STARTING)
    assert die(world, dep, 1) == "failed"
    assert world.row(dep)["error_message"] == "Container exited 1 during boot; last output:\n| Traceback\n| SyntaxError"
    assert world.holds_nothing(dep)


def test_an_unhealthy_deployment_that_crashes_is_crashed(world: World) -> None:
    dep = running(world)
    make_unhealthy(world, dep)
    assert die(world, dep, 1) == "crashed"


@pytest.mark.parametrize("failures", [1, 2])
def test_a_few_failed_probes_leave_the_deployment_running(world: World, failures: int) -> None:
    dep = running(world)
    world.container(dep).behaviour.healthy = False
    for _ in range(failures):
        probe_all(world.ctx, session=world.http)
    assert world.status(dep) is Status.RUNNING
    assert world.row(dep)["health_failures"] == failures


def test_three_failed_probes_make_it_unhealthy_and_one_good_probe_brings_it_back(world: World) -> None:
    dep = running(world)
    make_unhealthy(world, dep)
    assert any(line.endswith("[UNHEALTHY] /health failed 3 times in a row") for line in world.log(dep))
    world.container(dep).behaviour.healthy = True
    assert probe_all(world.ctx, session=world.http) == {dep: "ok"}
    assert world.status(dep) is Status.RUNNING
    assert any(line.endswith("[RECOVERED] /health answers 200 again") for line in world.log(dep))


def test_a_probe_backfills_the_entity_id_the_running_stage_missed(world: World) -> None:
    dep = running(world)
    world.container(dep).behaviour.entity_id = "zns:late"
    probe_all(world.ctx, session=world.http)
    assert world.row(dep)["entity_id"] == "zns:late"


def test_reconcile_crashes_a_running_row_whose_container_is_gone(world: World) -> None:
    dep = running(world)
    world.container(dep).remove(force=True)
    report = reconcile_runtime(world.ctx)
    assert report.crashed == [dep]
    assert world.row(dep)["error_message"] == "Container disappeared"


def test_reconcile_restores_a_route_the_proxy_lost_and_removes_orphan_containers(world: World) -> None:
    dep, gone = running(world), running(world)
    world.proxy.routes.clear()
    orphan = world.container(gone)
    world.stop(gone)
    reconcile_stops(world.ctx)
    orphan.removed, orphan.status = False, "running"  # a container the teardown missed
    with world.engine.begin() as conn:
        from deployer.store.rows import DEPLOYMENT

        conn.execute(DEPLOYMENT.delete().where(DEPLOYMENT.c.id == gone))
    report = reconcile_runtime(world.ctx)
    assert report.routes == [dep] and f"deployer-{dep}" in world.proxy.routes
    assert report.removed == [f"deployer-{gone}"]


@pytest.mark.parametrize("status", [Status.RUNNING, Status.UNHEALTHY])
def test_stopping_an_active_deployment_tears_it_down(world: World, status: Status) -> None:
    dep = running(world)
    if status is Status.UNHEALTHY:
        make_unhealthy(world, dep)
    assert world.stop(dep) == "stopped"
    assert world.stop(dep) == "stopped"  # idempotent
    assert reconcile_stops(world.ctx) == 1
    assert world.holds_nothing(dep)
    assert world.row(dep)["stopped_at"].replace(tzinfo=None) == world.clock().replace(tzinfo=None)


@pytest.mark.parametrize("end", ["stopped", "failed", "crashed"])
def test_a_finished_deployment_restarts_from_queued_and_runs_again(world: World, end: str) -> None:
    if end == "failed":
        world.runtime.behaviour.exit_on_start = 1
    dep = running(world) if end != "failed" else world.upload()
    if end == "failed":
        assert world.drive(dep) is Status.FAILED
        world.runtime.behaviour.exit_on_start = None
    elif end == "stopped":
        world.stop(dep)
        reconcile_stops(world.ctx)
    else:
        die(world, dep, 1)
    assert world.restart(dep) == "queued"
    assert world.drive(dep) is Status.RUNNING
    assert world.row(dep)["restart_count"] == 1


def test_a_stopped_deployment_still_being_torn_down_cannot_restart_yet(world: World) -> None:
    from deployer.errors import Busy

    dep = running(world)
    world.stop(dep)
    with pytest.raises(Busy):
        world.restart(dep)


def test_the_on_failure_policy_restarts_a_crash_after_its_backoff_and_gives_up_at_its_limit(world: World) -> None:
    world.reconfigure(restart_policy="on-failure:2")
    dep = running(world)
    for attempt in range(2):
        assert die(world, dep, 1) == "crashed"
        assert f"restart policy on-failure:2: restarting in {2**attempt} s ({attempt + 1} of 2)" in world.log(dep)
        assert due_restarts(world.ctx) == []  # the backoff has not passed
        world.clock.advance(2**attempt)
        assert due_restarts(world.ctx) == [dep]
        world.restart(dep)
        assert world.drive(dep) is Status.RUNNING
    assert die(world, dep, 1) == "crashed"
    assert "restart policy on-failure:2: restarted 2 times already; left crashed" in world.log(dep)
    world.clock.advance(3600)
    assert due_restarts(world.ctx) == []
