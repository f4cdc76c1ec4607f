"""A deployment row straight into the table, for tests and benchmarks of the lower layers."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine

from deployer.store.models import utcnow
from deployer.store.tables import DEPLOYMENT


def make_deployment_row(engine: Engine, **overrides: Any) -> str:
    """A minimal deployment row, straight into the table (no bundle, no stages); returns its id."""
    now = utcnow()
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()), "name": "t", "slug": f"t-{uuid.uuid4().hex[:12]}", "entity_type": "agent",
        "runtime": "python", "status": "queued", "env": {}, "memory_mb": 256, "cpu_millis": 500,
        "restart_count": 0, "log_seq": 0, "created_at": now, "updated_at": now,
    }  # fmt: skip
    row.update(overrides)
    with engine.begin() as conn:
        conn.execute(DEPLOYMENT.insert().values(**row))
    return str(row["id"])
