"""Taking a deployment's resources down: on stop, on failure, and for stopped rows still holding some.

Every step is independent — one failing does not keep the others from running — and the errors are
collected into one system line.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from deployer.bundles import workdir
from deployer.lifecycle import containers, ports
from deployer.scrub import scrub
from deployer.store.loglines import append_system
from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.rows import PORTS as _ports
from deployer.store.states import BOOTING, Status
from deployer.store.transitions import transition

if TYPE_CHECKING:
    from deployer.lifecycle.context import Context

TEARDOWN = "teardown-"
log = logging.getLogger(__name__)


def claim_teardown(ctx: Context, deployment_id: str) -> str | None:
    """Mark a stopped row as being torn down by this caller; None if another teardown holds it.

    Restart waits for the mark to clear, so a teardown never races the pipeline of a restarted row.
    """
    marker = f"{TEARDOWN}{uuid.uuid4().hex[:24]}"  # fits driver_token's 36 characters
    stale = ctx.now() - timedelta(seconds=ctx.settings.stage_lease_sec)
    with ctx.engine.begin() as conn:
        won = conn.execute(
            update(_dep)
            .where(
                _dep.c.id == deployment_id,
                _dep.c.status == Status.STOPPED.value,
                or_(
                    _dep.c.driver_token.is_(None),
                    ~_dep.c.driver_token.startswith(TEARDOWN),
                    _dep.c.heartbeat_at < stale,
                ),
            )
            .values(driver_token=marker, heartbeat_at=ctx.now())
        ).rowcount
    return marker if won == 1 else None


def teardown(ctx: Context, deployment_id: str, *, marker: str | None = None, keep_container: bool = False) -> list[str]:
    """Remove what the deployment holds; then clear its driver (only if it still holds `marker`)."""
    errors: list[str] = []

    def step(name: str, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:  # collected, reported once, never stopping the other steps
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    name = containers.container_name(deployment_id)
    # The route goes first: during the container's grace period callers get the "stopped" page, not a
    # 502 from an app that is shutting down.
    if ctx.caddy is not None:
        step("route", lambda: ctx.caddy.remove_route(deployment_id))
    if not keep_container:
        step("container", lambda: containers.remove(ctx.docker, name, grace_sec=ctx.settings.stop_grace_sec))
    step("port", lambda: ports.release(ctx.engine, deployment_id))
    step("keypair", lambda: workdir.remove_keypair(ctx.settings, deployment_id))
    step("workdir", lambda: workdir.remove(ctx.settings, deployment_id))
    with ctx.engine.begin() as conn:
        # A kept (crashed) container is left for inspection but no longer counts as the row's.
        values: dict[str, Any] = {"driver_token": None, "container_id": None, "updated_at": ctx.now()}
        owned = [_dep.c.driver_token == marker] if marker else []
        conn.execute(update(_dep).where(_dep.c.id == deployment_id, *owned).values(**values))
        if errors:
            append_system(conn, deployment_id, scrub("teardown errors: " + "; ".join(errors)), now=ctx.now())
    return errors


def fail(ctx: Context, deployment_id: str, message: str, *, values: dict[str, Any] | None = None,
         driver_token: str | None = None) -> bool:  # fmt: skip
    """Move a booting row to failed with a scrubbed message and clean up; False (and nothing touched)
    when it was no longer booting or, given `driver_token`, no longer driven by that driver.

    Cleaning up only after winning matters: a late errback or a stale `die` event must not remove the
    container of a deployment that has meanwhile reached running or been re-driven (its exit would
    then be recorded as a crash).
    """
    clean = scrub(message)
    first_line = clean.splitlines()[0] if clean else "failed"
    won = transition(
        ctx.engine, deployment_id, expected=BOOTING, to=Status.FAILED, message=first_line,
        values={"error_message": clean, **(values or {})}, now=ctx.now, on_transition=ctx.on_transition,
        where={"driver_token": driver_token} if driver_token else None,
    )  # fmt: skip
    if not won:
        return False
    rest = clean.splitlines()[1:]
    if rest:
        with ctx.engine.begin() as conn:
            append_system(conn, deployment_id, *rest, now=ctx.now())
    teardown(ctx, deployment_id)
    return True


def stopped_holding_resources(ctx: Context, limit: int = 100) -> list[str]:
    held = select(_ports.c.deployment_id)
    query = (
        select(_dep.c.id)
        .where(
            _dep.c.status == Status.STOPPED.value,
            or_(_dep.c.container_id.is_not(None), _dep.c.driver_token.is_not(None), _dep.c.id.in_(held)),
        )
        .limit(limit)
    )
    with ctx.engine.connect() as conn:
        return [str(r) for r in conn.execute(query).scalars()]


def stop_teardown(ctx: Context, deployment_id: str) -> bool:
    marker = claim_teardown(ctx, deployment_id)
    if marker is None:
        return False
    teardown(ctx, deployment_id, marker=marker)
    with ctx.engine.begin() as conn:
        append_system(conn, deployment_id, "stopped: container, route, port and keypair removed", now=ctx.now())
    return True


def reconcile_stops(ctx: Context) -> int:
    """Tear down every stopped row that still holds a container, a port or a driver."""
    done = 0
    for deployment_id in stopped_holding_resources(ctx):
        try:
            done += stop_teardown(ctx, deployment_id)
        except Exception:  # one row's trouble must not keep the others holding resources
            log.exception("teardown of %s failed; retried on the next pass", deployment_id)
    return done
