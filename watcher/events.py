"""Docker's container events as the crash watcher reads them (pure: no Docker, no database).

The watcher subscribes to the `die` and `oom` events of this installation's containers. A container
the kernel's OOM killer struck sends `oom` before its `die`; the `die` carries the exit code.
"""

from __future__ import annotations

from typing import Any

from deployer.lifecycle import containers
from deployer.supervision.crashes import Exit


def event_filters(installation: str) -> dict[str, Any]:
    return {"type": "container", "event": ["die", "oom"], "label": containers.ours(installation)}


class Exits:
    """Turns the event stream into `Exit`s: one per `die`, OOM-killed when an `oom` of it came first."""

    def __init__(self) -> None:
        self.oom: set[str] = set()  # containers whose `oom` came and whose `die` has not yet

    def on_event(self, event: dict[str, Any]) -> Exit | None:
        attrs = event.get("Actor", {}).get("Attributes", {})
        container_id, deployment_id = event.get("id", ""), attrs.get("deployer.deployment", "")
        if event.get("status") == "oom" or event.get("Action") == "oom":
            self.oom.add(container_id)
            return None
        code = attrs.get("exitCode")
        ex = Exit(deployment_id, container_id, int(code) if code is not None else None, container_id in self.oom)
        self.oom.discard(container_id)
        return ex
