"""Retention (docs/architecture.md#periodic-work): old log lines and metric samples deleted in batches, never a
full scan.

Decide (pure): the cut-off of each pass from the settings (0 days disables a pass). Apply: delete by
primary key in batches of 10 000 chosen through the (stream, ts) and (sampled_at) indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select

from deployer.settings import Settings
from deployer.store.rows import DEPLOYMENT_LOG as _log
from deployer.store.rows import DEPLOYMENT_METRIC as _metric

BATCH = 10_000


@dataclass(frozen=True)
class Cutoffs:
    output: datetime | None  # stdout/stderr lines older than this go
    system: datetime | None
    metrics: datetime | None


def cutoffs(now: datetime, settings: Settings) -> Cutoffs:
    def before(days: int) -> datetime | None:
        return now - timedelta(days=days) if days > 0 else None

    return Cutoffs(
        before(settings.log_retention_days),
        before(settings.system_log_retention_days),
        before(settings.metric_retention_days),
    )


def delete_in_batches(engine: Engine, table: Any, *conditions: Any, batch: int = BATCH) -> int:
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = select(table.c.id).where(*conditions).limit(batch).scalar_subquery()
            n = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
        removed += n
        if n < batch:
            return removed


def apply_retention(engine: Engine, cut: Cutoffs, *, batch: int = BATCH) -> dict[str, int]:
    report = {"output": 0, "system": 0, "metrics": 0}
    if cut.output is not None:
        report["output"] = delete_in_batches(
            engine, _log, _log.c.stream.in_(["stdout", "stderr"]), _log.c.ts < cut.output, batch=batch
        )
    if cut.system is not None:
        report["system"] = delete_in_batches(engine, _log, _log.c.stream == "system", _log.c.ts < cut.system,
                                             batch=batch)  # fmt: skip
    if cut.metrics is not None:
        report["metrics"] = delete_in_batches(engine, _metric, _metric.c.sampled_at < cut.metrics, batch=batch)
    return report
