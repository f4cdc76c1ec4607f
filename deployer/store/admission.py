"""Admission against `DEPLOYER_MAX_ACTIVE`: the count and the write that makes a row active happen
in one transaction that no other admission interleaves with (uploads and restarts alike), so
concurrent requests cannot overshoot the limit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select, text

from deployer.errors import AtCapacity
from deployer.store.rows import DEPLOYMENT as _deployment
from deployer.store.states import ACTIVE

_LOCK_KEY = 0x6465706C  # an arbitrary advisory lock key owned by admission


@contextmanager
def admitting(engine: Engine, max_active: int) -> Iterator[Connection]:
    """A transaction in which one more row may become active; AtCapacity when none may."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        else:  # SQLite: take the write lock now, so no other writer runs between the count and the write
            conn.execute(text("UPDATE deployment SET id = id WHERE 0"))
        active = conn.execute(
            select(func.count()).select_from(_deployment).where(_deployment.c.status.in_([str(s) for s in ACTIVE]))
        ).scalar_one()
        if active >= max_active:
            raise AtCapacity(f"At capacity: {active} of {max_active} deployments are active; stop one first")
        yield conn
