from __future__ import annotations

import itertools

import pytest

from deployer.store.states import ACTIVE, BOOTING, PIPELINE, TERMINAL, Status, can_transition, next_stage


def test_the_pipeline_runs_in_the_documented_order() -> None:
    assert [s.value for s in PIPELINE] == [
        "queued", "unpacking", "allocating_port", "writing_config", "building", "starting",
        "health_checking", "registering_route", "running",
    ]  # fmt: skip
    for a, b in itertools.pairwise(PIPELINE):
        assert next_stage(a) is b and can_transition(a, b)
    assert next_stage(Status.RUNNING) is None


def test_active_and_terminal_sets_partition_the_vocabulary() -> None:
    assert set(Status) == ACTIVE | TERMINAL
    assert not ACTIVE & TERMINAL
    assert {Status.RUNNING, Status.UNHEALTHY} <= ACTIVE


@pytest.mark.parametrize("s", sorted(BOOTING))
def test_every_boot_stage_may_fail_or_stop_but_not_crash(s: Status) -> None:
    assert can_transition(s, Status.FAILED)
    assert can_transition(s, Status.STOPPED)
    assert not can_transition(s, Status.CRASHED)


def test_running_and_unhealthy_flip_and_may_crash() -> None:
    assert can_transition("running", "unhealthy") and can_transition("unhealthy", "running")
    assert can_transition("running", "crashed") and can_transition("unhealthy", "crashed")
    assert not can_transition("running", "failed")


@pytest.mark.parametrize("s", sorted(TERMINAL))
def test_terminal_states_only_leave_by_a_restart(s: Status) -> None:
    assert {t for t in Status if can_transition(s, t)} == {Status.QUEUED}


def test_stages_cannot_be_skipped_or_reversed() -> None:
    assert not can_transition("queued", "building")
    assert not can_transition("building", "unpacking")
    assert not can_transition("stopped", "running")
