"""Conditional status transitions: `UPDATE … WHERE id=? AND status IN (expected)`, plus a system line."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, update

from deployer.store.loglines import append_status
from deployer.store.models import utcnow
from deployer.store.rows import DEPLOYMENT as _deployment
from deployer.store.states import Status, can_transition

OnTransition = Callable[[str, Status], None]


def transition(
    engine: Engine,
    deployment_id: str,
    *,
    expected: Status | Iterable[Status],
    to: Status,
    message: str | None = None,
    values: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    now: Callable[[], datetime] = utcnow,
    on_transition: OnTransition | None = None,
) -> bool:
    """Move the row to `to` if it is still in one of `expected`; report whether this call won.

    The status change and its system line commit together, so the log never shows a transition that
    did not happen. `where` adds column equalities (the driver token). `on_transition` (status events)
    runs only after the commit.
    """
    with engine.begin() as conn:
        won = transition_in(conn, deployment_id, expected=expected, to=to, message=message, values=values,
                            where=where, now=now)  # fmt: skip
    if won and on_transition is not None:
        on_transition(deployment_id, to)
    return won


def transition_in(
    conn: Connection,
    deployment_id: str,
    *,
    expected: Status | Iterable[Status],
    to: Status,
    message: str | None = None,
    values: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    now: Callable[[], datetime] = utcnow,
) -> bool:
    """`transition` inside the caller's transaction (which commits it and announces it)."""
    allowed = (expected,) if isinstance(expected, Status) else tuple(expected)
    illegal = [s for s in allowed if not can_transition(s, to)]
    if illegal:
        raise ValueError(f"illegal transition {', '.join(illegal)} -> {to}")
    at = now()
    fields: dict[str, Any] = {"status": str(to), "updated_at": at, **(values or {})}
    if to is Status.STOPPED:
        fields.setdefault("stopped_at", at)
    won = conn.execute(
        update(_deployment)
        .where(
            _deployment.c.id == deployment_id,
            _deployment.c.status.in_([str(s) for s in allowed]),
            *(_deployment.c[k] == v for k, v in (where or {}).items()),
        )
        .values(**fields)
    ).rowcount
    if won != 1:
        return False
    append_status(conn, deployment_id, to, message, now=at)
    return True
