"""Taking a deployment's resources down: on stop, on failure, and for stopped rows still holding some.

Every step is independent — one failing does not keep the others from running — and the errors are
collected into one system line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from deployer import containers, ports, workdir
from deployer.loglines import append_system
from deployer.models import Deployment, PortAllocation
from deployer.scrub import scrub
from deployer.states import BOOTING, Status
from deployer.transitions import transition

if TYPE_CHECKING:
    from deployer.context import Context

_dep = Deployment.__table__  # type: ignore[attr-defined]
_ports = PortAllocation.__table__  # type: ignore[attr-defined]


def teardown(ctx: Context, deployment_id: str, *, keep_container: bool = False) -> list[str]:
    errors: list[str] = []

    def step(name: str, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:  # collected, reported once, never stopping the other steps
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    name = containers.container_name(deployment_id)
    if not keep_container:
        step("container", lambda: containers.remove(ctx.docker, name, grace_sec=ctx.settings.stop_grace_sec))
    if ctx.caddy is not None:
        step("route", lambda: ctx.caddy.remove_route(deployment_id))
    step("port", lambda: ports.release(ctx.engine, deployment_id))
    step("keypair", lambda: workdir.remove_keypair(ctx.settings, deployment_id))
    step("workdir", lambda: workdir.remove(ctx.settings, deployment_id))
    with ctx.engine.begin() as conn:
        values: dict[str, Any] = {"driver_token": None, "updated_at": ctx.now()}
        if not keep_container:
            values["container_id"] = None
        conn.execute(update(_dep).where(_dep.c.id == deployment_id).values(**values))
        if errors:
            append_system(conn, deployment_id, scrub("teardown errors: " + "; ".join(errors)), now=ctx.now())
    return errors


def fail(ctx: Context, deployment_id: str, message: str) -> bool:
    """Move a booting row to failed with a scrubbed message and clean up. False if it was not booting."""
    clean = scrub(message)
    first_line = clean.splitlines()[0] if clean else "failed"
    won = transition(
        ctx.engine, deployment_id, expected=BOOTING, to=Status.FAILED, message=first_line,
        values={"error_message": clean}, now=ctx.now, on_transition=ctx.on_transition,
    )  # fmt: skip
    if won:
        rest = clean.splitlines()[1:]
        if rest:
            with ctx.engine.begin() as conn:
                append_system(conn, deployment_id, *rest, now=ctx.now())
    teardown(ctx, deployment_id)
    return won


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


def reconcile_stops(ctx: Context) -> int:
    """Tear down every stopped row that still holds a container, a port or a driver."""
    ids = stopped_holding_resources(ctx)
    for deployment_id in ids:
        teardown(ctx, deployment_id)
        with ctx.engine.begin() as conn:
            append_system(conn, deployment_id, "stopped: container, route, port and keypair removed", now=ctx.now())
    return len(ids)
