"""The status vocabulary and the transition table (docs/architecture.md#states), as pure data and functions."""

from __future__ import annotations

from enum import StrEnum
from itertools import pairwise


class Status(StrEnum):
    QUEUED = "queued"
    UNPACKING = "unpacking"
    ALLOCATING_PORT = "allocating_port"
    WRITING_CONFIG = "writing_config"
    BUILDING = "building"
    STARTING = "starting"
    HEALTH_CHECKING = "health_checking"
    REGISTERING_ROUTE = "registering_route"
    RUNNING = "running"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"
    STOPPED = "stopped"
    CRASHED = "crashed"


# The boot pipeline, in order; each stage moves the row to the next entry.
PIPELINE: tuple[Status, ...] = (
    Status.QUEUED,
    Status.UNPACKING,
    Status.ALLOCATING_PORT,
    Status.WRITING_CONFIG,
    Status.BUILDING,
    Status.STARTING,
    Status.HEALTH_CHECKING,
    Status.REGISTERING_ROUTE,
    Status.RUNNING,
)
BOOTING: frozenset[Status] = frozenset(PIPELINE[:-1])
ACTIVE: frozenset[Status] = BOOTING | {Status.RUNNING, Status.UNHEALTHY}
TERMINAL: frozenset[Status] = frozenset({Status.FAILED, Status.STOPPED, Status.CRASHED})


def _table() -> dict[Status, frozenset[Status]]:
    table: dict[Status, set[Status]] = {s: set() for s in Status}
    for current, following in pairwise(PIPELINE):
        table[current].add(following)
    for s in BOOTING:
        table[s].add(Status.FAILED)
    table[Status.RUNNING] |= {Status.UNHEALTHY, Status.CRASHED}
    table[Status.UNHEALTHY] |= {Status.RUNNING, Status.CRASHED}
    for s in ACTIVE:
        table[s].add(Status.STOPPED)
    for s in TERMINAL:
        table[s].add(Status.QUEUED)
    return {s: frozenset(t) for s, t in table.items()}


TRANSITIONS: dict[Status, frozenset[Status]] = _table()


def can_transition(current: Status | str, target: Status | str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def next_stage(current: Status | str) -> Status | None:
    """The status after `current` in the boot pipeline, or None past its end."""
    s = Status(current)
    if s not in PIPELINE or s is Status.RUNNING:
        return None
    return PIPELINE[PIPELINE.index(s) + 1]


def is_active(status: Status | str) -> bool:
    return Status(status) in ACTIVE
