"""Host port allocation. `port_allocation` is the only source of truth for port uniqueness.

Decide: which free ports to try, in which order (pure). Apply: `INSERT … ON CONFLICT DO NOTHING`
until one sticks; the primary key on `port` and the unique `deployment_id` make a double allocation
impossible whatever the interleaving.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from deployer.errors import PortExhausted
from deployer.store.models import utcnow
from deployer.store.rows import PORTS as _ports


def candidates(lo: int, hi: int, taken: Iterable[int], start: int) -> list[int]:
    """Free ports of `lo..hi` (inclusive), beginning at `start` and wrapping around.

    Concurrent allocators start at different offsets, so they rarely contend for the same port.
    """
    used = set(taken)
    span = hi - lo + 1
    offset = (start - lo) % span if span > 0 else 0
    order = [lo + (offset + i) % span for i in range(span)]
    return [p for p in order if p not in used]


def _insert_ignore(conn: Connection, port: int, deployment_id: str, at: datetime) -> bool:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(_ports)
        .values(port=port, deployment_id=deployment_id, taken_at=at)
        .on_conflict_do_nothing()
    )
    return bool(conn.execute(stmt).rowcount == 1)


def port_of(conn: Connection, deployment_id: str) -> int | None:
    found = conn.execute(select(_ports.c.port).where(_ports.c.deployment_id == deployment_id)).scalar()
    return None if found is None else int(found)


def allocate(
    engine: Engine,
    deployment_id: str,
    lo: int,
    hi: int,
    *,
    now: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
) -> int:
    """The deployment's port; allocates one if it has none (so re-running a stage is harmless)."""
    pick = rng or random.Random()  # noqa: S311 - spreading contention, not security
    with engine.connect() as conn:
        existing = port_of(conn, deployment_id)
        if existing is not None:
            return existing
        taken = conn.execute(select(_ports.c.port).where(_ports.c.port.between(lo, hi))).scalars().all()
    for port in candidates(lo, hi, taken, pick.randint(lo, hi)):
        with engine.begin() as conn:
            if _insert_ignore(conn, port, deployment_id, now()):
                return port
            existing = port_of(conn, deployment_id)  # lost to ourselves: a concurrent re-run won
            if existing is not None:
                return existing
    raise PortExhausted(f"PORT_EXHAUSTED: no free port in {lo}..{hi}")


def release(engine: Engine, deployment_id: str) -> bool:
    """Free the deployment's port. Idempotent: returns whether a row was removed."""
    with engine.begin() as conn:
        return bool(conn.execute(delete(_ports).where(_ports.c.deployment_id == deployment_id)).rowcount)
