"""The boot pipeline from queued to running, and the way each stage fails, on the fakes."""

from __future__ import annotations

import docker.errors
import pytest

from deployer.bundles import workdir
from deployer.bundles.uploads import bundle_path
from deployer.lifecycle import ports
from deployer.lifecycle.caddy import CaddyError
from deployer.lifecycle.drain import MAX_DRIVES
from deployer.lifecycle.teardown import reconcile_stops
from deployer.store.states import PIPELINE, Status
from tests.domain.harness import World


def test_a_deployment_boots_through_every_stage_to_running(world: World) -> None:
    dep = world.upload()
    assert world.drive(dep) is Status.RUNNING
    assert [to for d, _, to in world.moves if d == dep] == list(PIPELINE[1:])
    row = world.row(dep)
    assert row["port"] is not None and row["image"] in world.builder.built
    assert row["container_id"] == world.container(dep).id and row["started_at"] is not None
    assert world.proxy.routes[f"deployer-{dep}"] == (row["slug"], "apps.test", row["port"])
    assert any(line.startswith("container ") and "started on 127.0.0.1" in line for line in world.log(dep))


def test_the_running_stage_records_the_entity_id_the_agent_serves(world: World) -> None:
    world.runtime.behaviour.entity_id = "zns:agent:abc"
    dep = world.upload()
    world.drive(dep)
    assert world.row(dep)["entity_id"] == "zns:agent:abc"


def test_a_restarted_deployment_reuses_the_image_it_built_before(world: World) -> None:
    dep = world.upload()
    world.drive(dep)
    world.stop(dep)
    reconcile_stops(world.ctx)
    assert world.restart(dep) == "queued"
    assert world.drive(dep) is Status.RUNNING
    assert len(world.builder.built) == 1
    assert any("is up to date; not rebuilt" in line for line in world.log(dep))


def test_without_caddy_the_route_is_skipped_and_the_deployment_still_runs(world: World) -> None:
    world.reconfigure(skip_caddy=True)
    dep = world.upload()
    assert world.drive(dep) is Status.RUNNING
    assert world.proxy.routes == {}
    assert "route skipped (DEPLOYER_SKIP_CADDY)" in world.log(dep)


def test_a_new_driver_resumes_a_stage_whose_worker_went_silent(world: World) -> None:
    dep = world.upload()
    world.drive(dep, through=Status.WRITING_CONFIG)
    assert world.claim() == []  # the first driver's heartbeat is fresh
    world.clock.advance(world.settings.stage_lease_sec + 1)
    assert world.drive(dep) is Status.RUNNING
    assert world.row(dep)["drive_attempts"] == 2


def test_a_row_whose_driver_is_lost_too_often_fails_while_queued(world: World) -> None:
    dep = world.upload()
    for _ in range(MAX_DRIVES):
        assert [d for d, _, _ in world.claim()] == [dep]
        world.clock.advance(world.settings.stage_lease_sec + 1)
    assert world.claim() == []
    assert world.status(dep) is Status.FAILED
    assert "was lost 3 times (last during queued)" in world.row(dep)["error_message"]


def test_a_bundle_gone_from_disk_fails_the_unpacking_stage(world: World) -> None:
    dep = world.upload()
    bundle_path(world.settings, dep).unlink()
    assert world.drive(dep) is Status.FAILED
    assert world.row(dep)["error_message"].startswith("unpacking failed: FileNotFoundError")
    assert world.holds_nothing(dep)


def test_no_free_port_fails_the_allocating_stage(world: World) -> None:
    world.reconfigure(port_min=20000, port_max=20000)
    holder, dep = world.upload(), world.upload()
    ports.allocate(world.engine, holder, 20000, 20000)
    assert world.drive(dep) is Status.FAILED
    assert "no free port in 20000..20000" in world.row(dep)["error_message"]


def test_a_bundle_that_no_longer_passes_inspection_fails_the_config_stage(world: World) -> None:
    dep = world.upload()
    world.drive(dep, through=Status.ALLOCATING_PORT)
    for f in workdir.app_dir(world.settings, dep).iterdir():
        f.unlink()
    world.clock.advance(world.settings.stage_lease_sec + 1)
    assert world.drive(dep) is Status.FAILED
    assert world.holds_nothing(dep)


def test_a_failed_build_fails_the_building_stage_with_the_builds_reason(world: World) -> None:
    world.builder.fail_with = "Image build failed: pip install exited 1"
    dep = world.upload()
    assert world.drive(dep) is Status.FAILED
    assert world.row(dep)["error_message"] == "Image build failed: pip install exited 1"
    assert any(line.endswith("Step 2/2 : COPY app /app") for line in world.log(dep))  # the build's output is kept


def test_a_missing_base_image_fails_the_building_stage(world: World) -> None:
    world.runtime.images.tags.clear()
    dep = world.upload()
    assert world.drive(dep) is Status.FAILED
    assert "is missing; run `deployer images build`" in world.row(dep)["error_message"]


def test_a_container_docker_refuses_to_start_fails_the_starting_stage(world: World) -> None:
    world.runtime.containers.run_error = docker.errors.APIError("port is already allocated")
    dep = world.upload()
    assert world.drive(dep) is Status.FAILED
    assert "starting failed: APIError" in world.row(dep)["error_message"]
    assert world.holds_nothing(dep)


def test_a_container_that_dies_during_boot_fails_with_its_exit_code_and_last_output(world: World) -> None:
    world.runtime.behaviour.exit_on_start = 3
    world.runtime.behaviour.output = ["Traceback (most recent call last):", "ImportError: no module named zynd"]
    dep = world.upload()
    assert world.drive(dep) is Status.FAILED
    message = world.row(dep)["error_message"]
    assert message.startswith("Container exited 3 during boot; last output:\n")
    assert "ImportError: no module named zynd" in message
    assert world.row(dep)["last_exit_code"] == 3
    assert world.holds_nothing(dep)


def test_a_container_that_never_answers_health_fails_after_the_boot_timeout(world: World) -> None:
    world.reconfigure(boot_health_timeout_ms=100)
    world.runtime.behaviour.healthy = False
    dep = world.upload()
    assert world.drive(dep) is Status.FAILED
    assert world.row(dep)["error_message"] == "Container did not become healthy within 100 ms; it printed nothing"
    assert world.holds_nothing(dep)


def test_a_proxy_that_refuses_the_route_fails_the_registering_stage(world: World) -> None:
    world.proxy.fail_with = CaddyError("Caddy admin API refused: 500")
    dep = world.upload()
    assert world.drive(dep) is Status.FAILED
    assert "Caddy admin API refused" in world.row(dep)["error_message"]
    assert world.holds_nothing(dep)


@pytest.mark.parametrize("stage", PIPELINE[1:-1], ids=lambda s: s.value)
def test_a_stage_whose_row_was_stopped_ends_quietly_and_tears_down(world: World, stage: Status) -> None:
    dep = world.upload()
    world.drive(dep, through=stage)
    assert world.status(dep) is stage
    assert world.stop(dep) == "stopped"
    world.clock.advance(world.settings.stage_lease_sec + 1)
    token = world.row(dep)["driver_token"]
    world.run(dep, token, [stage], through=stage)  # the driver's next look at the row
    assert world.status(dep) is Status.STOPPED
    assert world.holds_nothing(dep)
    assert "stopped: container, route, port and keypair removed" in world.log(dep)


def test_a_queued_row_that_is_stopped_is_never_driven(world: World) -> None:
    dep = world.upload()
    assert world.stop(dep) == "stopped"
    assert world.claim() == []
    assert world.holds_nothing(dep)
