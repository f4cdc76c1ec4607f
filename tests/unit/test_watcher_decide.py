"""The watcher's own decisions, without Docker or a database: what a container event means, and when
the restart policy's backoff has passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from deployer.supervision.crashes import Exit
from watcher.events import Exits, event_filters
from watcher.restarts import is_due


def die(container: str, code: str | None, deployment: str = "dep1") -> dict[str, Any]:
    attrs = {"deployer.deployment": deployment, **({"exitCode": code} if code is not None else {})}
    return {"status": "die", "Action": "die", "id": container, "Actor": {"ID": container, "Attributes": attrs}}


def oom(container: str) -> dict[str, Any]:
    return {"status": "oom", "Action": "oom", "id": container, "Actor": {"ID": container, "Attributes": {}}}


def test_a_die_event_is_an_exit_with_its_exact_code_zero_included() -> None:
    exits = Exits()
    assert exits.on_event(die("c1", "0")) == Exit("dep1", "c1", 0, False)
    assert exits.on_event(die("c2", "137", "dep2")) == Exit("dep2", "c2", 137, False)
    assert exits.on_event(die("c3", None)) == Exit("dep1", "c3", None, False)


def test_an_oom_event_marks_only_that_containers_next_die_as_oom_killed() -> None:
    exits = Exits()
    assert exits.on_event(oom("c1")) is None
    assert exits.on_event(die("c2", "1")) == Exit("dep1", "c2", 1, False)
    assert exits.on_event(die("c1", "137")) == Exit("dep1", "c1", 137, True)
    assert exits.on_event(die("c1", "137")) == Exit("dep1", "c1", 137, False)  # a later die of it: not again
    assert exits.oom == set()


def test_the_watcher_listens_only_to_die_and_oom_of_this_installations_containers() -> None:
    filters = event_filters("inst-a")
    assert filters["type"] == "container" and filters["event"] == ["die", "oom"]
    assert filters["label"] != event_filters("inst-b")["label"]


def test_a_crashed_deployment_restarts_once_its_backoff_has_passed_and_naive_times_are_utc() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert is_due(None, 5, now)  # crashed at an unknown time: at once
    assert not is_due(now - timedelta(seconds=0.5), 0, now)  # the first backoff is 1 s
    assert is_due(now - timedelta(seconds=1), 0, now)
    assert not is_due(now - timedelta(seconds=30), 6, now)  # capped at 60 s
    assert is_due(now - timedelta(seconds=60), 6, now)
    assert is_due(datetime(2026, 11, 23, 11, 59, 0), 3, now)  # SQLite's naive UTC
    assert not is_due(datetime(2026, 11, 23, 11, 59, 59), 3, now)
