"""What happens when a deployment's container dies (docs/architecture.md#crashes-and-restarts) and the restart policy.

Decide (pure): the reason text and whether/when the policy restarts (the watcher acts on it: see
`watcher.restarts`). Apply: the conditional transition first — detection latency is measured to that
commit — then the output lines and teardown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from deployer.lifecycle import containers
from deployer.lifecycle.context import Context
from deployer.lifecycle.teardown import fail, teardown
from deployer.store import rows
from deployer.store.loglines import quoted
from deployer.store.states import BOOTING, Status
from deployer.store.transitions import transition

OUTPUT_LINES = 200
BACKOFF_START_S, BACKOFF_CAP_S = 1.0, 60.0


@dataclass(frozen=True)
class Exit:
    deployment_id: str
    container_id: str
    exit_code: int | None
    oom: bool


def restart_limit(policy: str) -> int:
    m = re.fullmatch(r"on-failure:(\d+)", policy)
    return int(m.group(1)) if m else 0


def restart_delay(restart_count: int) -> float:
    return float(min(BACKOFF_CAP_S, BACKOFF_START_S * 2**restart_count))


def policy_line(policy: str, restart_count: int) -> str:
    limit = restart_limit(policy)
    if limit == 0:
        return "restart policy is 'no': left crashed"
    if restart_count >= limit:
        return f"restart policy {policy}: restarted {restart_count} times already; left crashed"
    delay = restart_delay(restart_count)
    return f"restart policy {policy}: restarting in {delay:.0f} s ({restart_count + 1} of {limit})"


def handle_exit(ctx: Context, ex: Exit, *, drain_output: Callable[[], None] = lambda: None) -> str:
    """Record a dead container: `crashed` (running/unhealthy), `failed` (booting), else ignored."""
    row = rows.load(ctx.engine, ex.deployment_id)
    if row is None or row["container_id"] not in (None, ex.container_id):
        return "ignored"  # an older container of a restarted deployment
    reason = containers.crash_reason(ex.exit_code, ex.oom, row["memory_mb"])
    status = Status(row["status"])
    now = containers.state(ctx.docker, ex.container_id) if ex.container_id else None
    if now is not None and now.running:
        return "ignored"  # a stale or repeated event: that container runs
    if status in BOOTING and row["container_id"] is None:
        # The container a stop or crash left behind, whose event came late, while a restart boots:
        # this boot's own container is recorded right after it starts, and the boot watches it itself.
        return "ignored"
    if status in BOOTING:
        tail = containers.output_note(ctx.docker, ex.container_id, 20)
        fail(ctx, ex.deployment_id, f"{reason} during boot{tail}", values={"last_exit_code": ex.exit_code})
        return "failed"
    if status not in (Status.RUNNING, Status.UNHEALTHY):
        return "ignored"  # stopped by the user (exit 143 after the stop), already crashed, …
    won = transition(
        ctx.engine, ex.deployment_id, expected=[Status.RUNNING, Status.UNHEALTHY], to=Status.CRASHED, message=reason,
        values={"last_exit_code": ex.exit_code, "last_crash_at": ctx.now(), "error_message": reason},
        now=ctx.now, on_transition=ctx.on_transition,
    )  # fmt: skip
    if not won:
        return "ignored"
    drain_output()  # let the tailer store the container's last words before they are read and removed
    output = containers.last_output(ctx.docker, ex.container_id, OUTPUT_LINES)
    state = containers.state(ctx.docker, ex.container_id)
    lines = [f"container state: exit code {ex.exit_code}, OOM-killed {ex.oom}, error {state.error if state else '-'}"]
    lines += [f"last output ({len(output)} lines):", *map(quoted, output)] if output else ["no output"]
    lines.append(policy_line(ctx.settings.restart_policy, row["restart_count"]))
    rows.note(ctx.engine, ex.deployment_id, *lines, now=ctx.now)
    teardown(ctx, ex.deployment_id, keep_container=ctx.settings.keep_crashed_containers)
    return "crashed"
