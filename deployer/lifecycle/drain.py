"""Handing rows to drivers: claim queued rows and resume rows whose driver went silent.

A claim is a compare-and-set of `driver_token`, so two drains never drive one row; a driver is
silent when its heartbeat is older than the stage lease (its worker died mid-stage), and then a new
token takes over and re-runs the current stage — every stage is idempotent. A row that loses its
driver too often fails instead of looping.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select

from deployer.lifecycle.context import Context
from deployer.lifecycle.teardown import fail
from deployer.store import rows
from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.states import BOOTING, Status

MAX_DRIVES = 3
Send = Callable[[str, str, Status], None]  # (deployment id, driver token, status to start from)


def _candidates(ctx: Context, limit: int) -> list[Any]:
    stale = ctx.now() - timedelta(seconds=ctx.settings.stage_lease_sec)
    query = (
        select(_dep.c.id, _dep.c.status, _dep.c.driver_token, _dep.c.drive_attempts)
        .where(
            _dep.c.status.in_([s.value for s in BOOTING]),
            or_(_dep.c.driver_token.is_(None), _dep.c.heartbeat_at.is_(None), _dep.c.heartbeat_at < stale),
        )
        .order_by(_dep.c.created_at)
        .limit(limit)
    )
    with ctx.engine.connect() as conn:
        return list(conn.execute(query).all())


def _claim(ctx: Context, row: Any) -> str | None:
    token = str(uuid.uuid4())
    same = {"status": row.status, "driver_token": row.driver_token}
    won = rows.save_where(ctx.engine, row.id, same, driver_token=token, heartbeat_at=ctx.now(),
                          drive_attempts=_dep.c.drive_attempts + 1)  # fmt: skip
    return token if won else None


def drain(ctx: Context, send: Send, limit: int = 100) -> int:
    """Start or resume every booting row without a live driver; returns how many were handed out."""
    handed = 0
    for row in _candidates(ctx, limit):
        if row.driver_token is not None and row.drive_attempts >= MAX_DRIVES:
            fail(ctx, row.id, f"The worker driving this deployment was lost {row.drive_attempts} times "
                              f"(last during {row.status}); giving up", driver_token=row.driver_token)  # fmt: skip
            continue
        token = _claim(ctx, row)
        if token is not None:
            send(row.id, token, Status(row.status))
            handed += 1
    return handed
