"""What the API and dashboard show of load: a deployment's samples and the host's capacity (§10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select

from deployer.errors import InvalidRequest
from deployer.store.deployments import get_deployment, iso
from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.rows import DEPLOYMENT_METRIC as _metric
from deployer.store.states import ACTIVE, Status

MAX_SAMPLES = 2000
SAMPLED = (Status.RUNNING, Status.UNHEALTHY)


def parse_since(raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest("since must be an ISO 8601 timestamp, e.g. 2026-11-23T12:00:00Z") from None


def _sample(r: Any) -> dict[str, Any]:
    return {"sampled_at": iso(r.sampled_at), "mem_used_mb": r.mem_used_mb, "mem_limit_mb": r.mem_limit_mb,
            "cpu_pct": r.cpu_pct}  # fmt: skip


def samples(
    engine: Engine, deployment_id: str, *, since: datetime | None, limit: int = MAX_SAMPLES
) -> list[dict[str, Any]]:
    """Oldest first; without `since`, the newest `limit` samples."""
    if not 1 <= limit <= MAX_SAMPLES:
        raise InvalidRequest(f"limit must be between 1 and {MAX_SAMPLES}")
    get_deployment(engine, deployment_id)
    cond = [_metric.c.deployment_id == deployment_id]
    if since is not None:
        cond.append(_metric.c.sampled_at > since)
    query = select(_metric).where(*cond).order_by(_metric.c.sampled_at.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_sample(r) for r in reversed(rows)]


def stats(engine: Engine, *, max_active: int) -> dict[str, Any]:
    """Slots and memory: reserved is the limits of active rows, used the latest sample of each container."""
    latest = (
        select(_metric.c.deployment_id, func.max(_metric.c.sampled_at).label("at"))
        .group_by(_metric.c.deployment_id)
        .subquery()
    )
    query = (
        select(_dep.c.id, _dep.c.name, _dep.c.slug, _dep.c.status, _dep.c.memory_mb, _dep.c.cpu_millis,
               _metric.c.sampled_at, _metric.c.mem_used_mb, _metric.c.mem_limit_mb, _metric.c.cpu_pct)
        .select_from(_dep)
        .outerjoin(latest, latest.c.deployment_id == _dep.c.id)
        .outerjoin(_metric, and_(_metric.c.deployment_id == _dep.c.id, _metric.c.sampled_at == latest.c.at))
        .where(_dep.c.status.in_([s.value for s in ACTIVE]))
        .order_by(_dep.c.created_at)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    containers = _unique([
        {"id": r.id, "name": r.name, "slug": r.slug, "status": r.status, "memory_mb": r.memory_mb,
         "cpu_millis": r.cpu_millis, "sample": _sample(r) if r.sampled_at is not None and r.status in SAMPLED else None}
        for r in rows
    ])  # fmt: skip
    active = len(containers)
    return {
        "max_active": max_active,
        "active": active,
        "free": max(0, max_active - active),
        "memory": {
            "reserved_mb": sum(c["memory_mb"] or 0 for c in containers),
            "used_mb": round(sum(c["sample"]["mem_used_mb"] for c in containers if c["sample"]), 1),
        },
        "containers": containers,
    }


def _unique(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per deployment even if two samples share the latest timestamp."""
    seen: dict[str, dict[str, Any]] = {}
    for c in containers:
        seen.setdefault(c["id"], c)
    return list(seen.values())
