"""The deployment rows as the domain reads and writes them, outside of status changes.

The typed table handles (defined in `deployer.store.tables`) are re-exported here for the modules that
read rows. Status changes are not written here; `deployer.store.transitions` is the one place that
moves `status`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from deployer.store.db import reading
from deployer.store.loglines import append_system
from deployer.store.models import utcnow
from deployer.store.tables import API_TOKENS, DEPLOYMENT, DEPLOYMENT_LOG, DEPLOYMENT_METRIC, PORTS

__all__ = [
    "API_TOKENS", "DEPLOYMENT", "DEPLOYMENT_LOG", "DEPLOYMENT_METRIC", "PORTS", "Row",
    "load", "note", "save", "save_if_driven", "save_where",
]  # fmt: skip


Row = Mapping[str, Any]


def load(engine: Engine, deployment_id: str) -> Row | None:
    """Every column of the row, or None when there is no such deployment."""
    with reading(engine) as conn:
        row = conn.execute(select(DEPLOYMENT).where(DEPLOYMENT.c.id == deployment_id)).first()
    return None if row is None else dict(row._mapping)


def save(engine: Engine, deployment_id: str, *, now: Callable[[], datetime] = utcnow, **values: Any) -> None:
    """Write fields of the row whatever its status (the caller already owns it); bumps `updated_at`."""
    with engine.begin() as conn:
        conn.execute(
            update(DEPLOYMENT).where(DEPLOYMENT.c.id == deployment_id).values(updated_at=now(), **values)
        )


def save_if_driven(engine: Engine, deployment_id: str, token: str, **values: Any) -> bool:
    """Write fields only while `token` still drives the row; report whether it did."""
    with engine.begin() as conn:
        won = conn.execute(
            update(DEPLOYMENT)
            .where(DEPLOYMENT.c.id == deployment_id, DEPLOYMENT.c.driver_token == token)
            .values(**values)
        ).rowcount
    return bool(won)


def save_where(engine: Engine, deployment_id: str, where: Mapping[str, Any], **values: Any) -> bool:
    """Write fields only while the row's columns still equal `where` (None means IS NULL)."""
    cond = [DEPLOYMENT.c[k].is_(None) if v is None else DEPLOYMENT.c[k] == v for k, v in where.items()]
    with engine.begin() as conn:
        won = conn.execute(update(DEPLOYMENT).where(DEPLOYMENT.c.id == deployment_id, *cond).values(**values)).rowcount
    return bool(won)


def note(engine: Engine, deployment_id: str, *lines: str, now: Callable[[], datetime] = utcnow) -> None:
    """System lines in the deployment's log, in a transaction of their own."""
    if not lines:
        return
    with engine.begin() as conn:
        append_system(conn, deployment_id, *lines, now=now())
