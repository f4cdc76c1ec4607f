"""The restart policy's due restarts: crashed deployments whose backoff has passed.

`deployer.supervision.crashes` decides the policy (how many restarts, how long a backoff) and writes
its line when a container crashes; the watcher, checking every second, is what acts on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from deployer.context import Context
from deployer.store.states import Status
from deployer.store.tables import DEPLOYMENT as _dep
from deployer.supervision.crashes import restart_delay, restart_limit


def is_due(last_crash_at: datetime | None, restart_count: int, now: datetime) -> bool:
    """Whether a crashed deployment's backoff has passed (a crash of unknown time restarts at once)."""
    return last_crash_at is None or _aware(last_crash_at) <= now - timedelta(seconds=restart_delay(restart_count))


def due_restarts(ctx: Context) -> list[str]:
    """Crashed rows the restart policy restarts now (their backoff has passed and they hold nothing)."""
    limit = restart_limit(ctx.settings.restart_policy)
    if limit == 0:
        return []
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(_dep.c.id, _dep.c.restart_count, _dep.c.last_crash_at).where(
                _dep.c.status == Status.CRASHED.value,
                _dep.c.restart_count < limit,
                _dep.c.driver_token.is_(None),
                _dep.c.container_id.is_(None),
            )
        ).all()
    now = ctx.now()
    return [r.id for r in rows if is_due(r.last_crash_at, r.restart_count, now)]


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
