from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, insert, select

from deployer.models import DeploymentLog, DeploymentMetric, utcnow
from deployer.retention import apply_retention, cutoffs
from deployer.settings import Settings, load_settings
from tests.conftest import make_deployment_row

_log = DeploymentLog.__table__  # type: ignore[attr-defined]
_metric = DeploymentMetric.__table__  # type: ignore[attr-defined]


def test_cutoffs_follow_the_settings_and_zero_disables_a_pass(settings_env: dict[str, str]) -> None:
    s = load_settings({**settings_env, "DEPLOYER_METRIC_RETENTION_DAYS": "0"})
    now = utcnow()
    cut = cutoffs(now, s)
    assert cut.output == now - timedelta(days=7) and cut.system == now - timedelta(days=30)
    assert cut.metrics is None


def test_retention_removes_exactly_what_is_older_than_each_cutoff(engine: Engine, settings: Settings) -> None:
    dep = make_deployment_row(engine)
    now = utcnow()
    ages = [1, 6, 8, 20, 29, 31, 40]  # days
    rows, n = [], 0
    for stream in ("stdout", "stderr", "system"):
        for age in ages:
            n += 1
            rows.append({"deployment_id": dep, "line_no": n, "stream": stream, "text": f"{stream} {age}",
                         "ts": now - timedelta(days=age, minutes=1)})  # fmt: skip
    metrics = [{"deployment_id": dep, "sampled_at": now - timedelta(days=age, minutes=1), "mem_used_mb": 1,
                "mem_limit_mb": 2, "cpu_pct": float(age)} for age in ages]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(_log), rows)
        conn.execute(insert(_metric), metrics)
    report = apply_retention(engine, cutoffs(now, settings), batch=2)  # small batches: several rounds
    assert report == {"output": 2 * 5, "system": 2, "metrics": 6}
    with engine.connect() as conn:
        kept = sorted(conn.execute(select(_log.c.text)).scalars())
        kept_metrics = sorted(conn.execute(select(_metric.c.cpu_pct)).scalars())
    assert kept == sorted(["stderr 1", "stderr 6", "stdout 1", "stdout 6"] + [f"system {a}" for a in (1, 6, 8, 20, 29)])
    assert kept_metrics == [1.0]
