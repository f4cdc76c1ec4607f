"""Reading deployments and the user-facing verbs that only touch the database (list, get, stop)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from deployer.errors import Busy, Conflict, InvalidRequest, NotFound
from deployer.store import rows
from deployer.store.admission import admitting
from deployer.store.db import reading
from deployer.store.models import utcnow
from deployer.store.rows import DEPLOYMENT as _deployment
from deployer.store.rows import DEPLOYMENT_LOG as _log
from deployer.store.states import TERMINAL, Status
from deployer.store.transitions import OnTransition, transition, transition_in

MAX_PAGE = 500
MAX_LOG_PAGE = 2000

# What a user may see of a row: never file paths, env values or key material.
PUBLIC_FIELDS = (
    "id", "name", "slug", "entity_type", "runtime", "status", "error_message", "port", "container_id",
    "image", "registry_url", "public_key_b64", "entity_id", "memory_mb", "cpu_millis", "last_exit_code",
    "last_crash_at", "restart_count", "created_at", "started_at", "stopped_at", "updated_at",
)  # fmt: skip


TIME_FIELDS = ("last_crash_at", "created_at", "started_at", "stopped_at", "updated_at")
_VIEW_COLUMNS = [_deployment.c[k] for k in (*PUBLIC_FIELDS, "host_url", "env")]


def iso(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is UTC else (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
        return aware.isoformat().replace("+00:00", "Z")
    return value


def public_view(m: Mapping[Any, Any]) -> dict[str, Any]:
    """A row's mapping (selected with `_VIEW_COLUMNS`, or all columns) as the API shows it."""
    view = {k: m[k] for k in PUBLIC_FIELDS}
    for k in TIME_FIELDS:
        view[k] = iso(view[k])
    view["url"] = m["host_url"]
    view["env_keys"] = sorted((m["env"] or {}).keys())
    return view


def get_deployment(engine: Engine, deployment_id: str) -> dict[str, Any]:
    row = rows.load(engine, deployment_id)
    if row is None:
        raise NotFound(f"deployment {deployment_id[:64]} not found")
    return public_view(row)


def list_deployments(
    engine: Engine, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    if status is not None and status not in {s.value for s in Status}:
        raise InvalidRequest(f"status must be one of {', '.join(s.value for s in Status)}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise InvalidRequest("offset must not be negative")
    cond = [] if status is None else [_deployment.c.status == status]
    with reading(engine) as conn:  # the page and the total in one round trip
        page = conn.execute(
            select(*_VIEW_COLUMNS, func.count().over().label("total"))
            .where(*cond)
            .order_by(_deployment.c.created_at.desc(), _deployment.c.id)
            .limit(limit)
            .offset(offset)
        ).all()
        if page:
            total = page[0].total
        else:  # past the last page: the window had no row to count on
            total = conn.execute(select(func.count()).select_from(_deployment).where(*cond)).scalar_one()
    return [public_view(r._mapping) for r in page], int(total)


def log_lines(engine: Engine, deployment_id: str, *, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_LOG_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LOG_PAGE}")
    get_deployment(engine, deployment_id)
    with reading(engine) as conn:
        lines = conn.execute(
            select(_log.c.line_no, _log.c.stream, _log.c.text, _log.c.ts)
            .where(_log.c.deployment_id == deployment_id, _log.c.line_no > after)
            .order_by(_log.c.line_no)
            .limit(limit)
        ).all()
    return [{"line_no": r.line_no, "stream": r.stream, "text": r.text, "ts": iso(r.ts)} for r in lines]


def request_stop(
    engine: Engine,
    deployment_id: str,
    *,
    now: Callable[[], datetime] = utcnow,
    on_transition: OnTransition | None = None,
) -> str:
    """Mark the deployment stopped (teardown is the workers' job). Idempotent; returns the status."""
    for _ in range(20):  # each lost race means another writer moved it; look again
        current = Status(get_deployment(engine, deployment_id)["status"])
        if current in TERMINAL:
            return current.value
        if transition(
            engine, deployment_id, expected=current, to=Status.STOPPED, message="stop requested",
            now=now, on_transition=on_transition,
        ):  # fmt: skip
            return Status.STOPPED.value
    raise InvalidRequest("deployment is changing too fast to stop; try again")


def request_restart(
    engine: Engine,
    deployment_id: str,
    *,
    max_active: int,
    now: Callable[[], datetime] = utcnow,
    on_transition: OnTransition | None = None,
) -> str:
    """crashed|stopped|failed → queued; the pipeline then re-uses the built image when there is one."""
    status = Status(get_deployment(engine, deployment_id)["status"])
    if status not in TERMINAL:
        raise Conflict(f"deployment is {status}; only crashed, stopped or failed deployments can be restarted")
    values = {
        "error_message": None, "driver_token": None, "heartbeat_at": None, "drive_attempts": 0,
        "restart_count": _deployment.c.restart_count + 1, "started_at": None, "stopped_at": None,
    }  # fmt: skip
    # Only a row that holds nothing any more: a teardown still running would race the new pipeline.
    idle = {"driver_token": None, "container_id": None}
    with admitting(engine, max_active) as conn:
        won = transition_in(conn, deployment_id, expected=status, to=Status.QUEUED, message="restart requested",
                            values=values, where=idle, now=now)  # fmt: skip
    if not won:
        raise Busy("deployment is still being torn down; retry in a moment")
    if on_transition is not None:
        on_transition(deployment_id, Status.QUEUED)
    return Status.QUEUED.value
