"""CPU and memory samples of every running and unhealthy container (sample-metrics, docs/architecture.md#periodic-work).

Sequential `docker stats(stream=False)` waits for two samples, 1-2 s per container, which cannot
keep a 30 s interval past ~20 containers. Here every container is read at once with one-shot stats,
twice, a window apart: the CPU fraction is the usage delta over the window, so the whole pass costs
about one window whatever the count. Decide (`cpu_fraction`, `memory_mb`) is pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from deployer.lifecycle.context import Context
from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.rows import DEPLOYMENT_METRIC as _metric
from deployer.store.states import Status

MB = 1024 * 1024


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic seconds
    cpu_ns: int
    mem_used: int
    mem_limit: int


def memory_used(stats: dict[str, Any]) -> int:
    """Usage less the page cache, as `docker stats` shows it (cgroup v1 `cache`, v2 `inactive_file`)."""
    mem = stats.get("memory_stats") or {}
    detail = mem.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", detail.get("cache", 0)))
    return max(0, int(mem.get("usage", 0)) - int(cache))


def reading(stats: dict[str, Any], at: float) -> Reading:
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)
    limit = int((stats.get("memory_stats") or {}).get("limit", 0))
    return Reading(at, int(cpu), memory_used(stats), limit)


def cpu_fraction(first: Reading, second: Reading) -> float:
    """CPU used between two readings as a fraction of one logical CPU (0..N)."""
    elapsed_ns = (second.at - first.at) * 1e9
    return max(0.0, (second.cpu_ns - first.cpu_ns) / elapsed_ns) if elapsed_ns > 0 else 0.0


def read_all(client: Any, ids: list[str], pool: ThreadPoolExecutor) -> dict[str, Reading | None]:
    def one(cid: str) -> Reading | None:
        try:
            stats = client.api.stats(cid, stream=False, one_shot=True)
        except Exception:  # gone meanwhile: the crash watcher deals with it
            return None
        return reading(stats, time.monotonic())

    return dict(zip(ids, pool.map(one, ids), strict=True))


def sample(client: Any, ids: list[str], *, window: float = 1.0,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    """{container: (cpu fraction, MB used, MB limit)} for every container that answered both reads."""
    if not ids:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(ids))) as pool:
        first = read_all(client, ids, pool)
        sleep(window)
        second = read_all(client, ids, pool)
    out = {}
    for cid in ids:
        a, b = first[cid], second[cid]
        if a is not None and b is not None:
            out[cid] = (round(cpu_fraction(a, b), 4), round(b.mem_used / MB, 2), round(b.mem_limit / MB, 2))
    return out


def sample_metrics(ctx: Context, *, window: float = 1.0) -> int:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(_dep.c.id, _dep.c.container_id).where(
                _dep.c.status.in_([Status.RUNNING.value, Status.UNHEALTHY.value]), _dep.c.container_id.is_not(None)
            )
        ).all()
    by_container = {r.container_id: r.id for r in rows}
    samples = sample(ctx.docker, list(by_container), window=window)
    if samples:
        now = ctx.now()
        with ctx.engine.begin() as conn:
            conn.execute(insert(_metric), [
                {"deployment_id": by_container[cid], "sampled_at": now, "cpu_pct": cpu, "mem_used_mb": used,
                 "mem_limit_mb": limit}
                for cid, (cpu, used, limit) in samples.items()
            ])  # fmt: skip
    return len(samples)
