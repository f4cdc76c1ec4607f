"""Steady-state `/health` probes (probe-health, docs/architecture.md#periodic-work): all running/unhealthy rows at once.

Decide (pure): a probe result and the stored failure count give the new count and the transition.
Apply: probe concurrently with a 2 s timeout, then store counts and transitions in the database, so
a worker restart forgets nothing.

A row that reached running without an entity id (its agent was still slow to serve its card when the
running stage asked) gets another look on each healthy probe during its first `ENTITY_WINDOW`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from sqlalchemy import and_, select

from deployer.lifecycle.context import Context
from deployer.lifecycle.entity import find_entity_id
from deployer.lifecycle.health import probe
from deployer.store import rows
from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.states import Status
from deployer.store.transitions import transition

FAILURES_TO_UNHEALTHY = 3
PROBE_TIMEOUT_S = 2.0
ENTITY_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Decision:
    failures: int
    to: Status | None
    line: str | None


def decide(status: Status, failures: int, healthy: bool) -> Decision:
    if healthy:
        if status is Status.UNHEALTHY:
            return Decision(0, Status.RUNNING, "[RECOVERED] /health answers 200 again")
        return Decision(0, None, None)
    failures += 1
    if status is Status.RUNNING and failures >= FAILURES_TO_UNHEALTHY:
        return Decision(failures, Status.UNHEALTHY, f"[UNHEALTHY] /health failed {failures} times in a row")
    return Decision(failures, None, None)


def probe_all(ctx: Context, *, workers: int = 32, session: requests.Session | None = None) -> dict[str, str]:
    """Probe every running or unhealthy row once; `session` replaces the pass's own pooled one (tests)."""
    wants_entity = and_(_dep.c.entity_id.is_(None), _dep.c.started_at > ctx.now() - ENTITY_WINDOW)
    with ctx.engine.connect() as conn:
        serving = conn.execute(
            select(
                _dep.c.id, _dep.c.status, _dep.c.port, _dep.c.health_failures, wants_entity.label("wants_entity")
            ).where(_dep.c.status.in_([Status.RUNNING.value, Status.UNHEALTHY.value]), _dep.c.port.is_not(None))
        ).all()
    if not serving:
        return {}
    if session is None:
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=workers))

    def check(r: Any) -> tuple[bool, str | None]:
        base = f"http://127.0.0.1:{r.port}"
        healthy = probe(session, f"{base}/health", PROBE_TIMEOUT_S)
        return healthy, (find_entity_id(session, base) if healthy and r.wants_entity else None)

    with ThreadPoolExecutor(max_workers=min(workers, len(serving))) as pool:
        results = list(pool.map(check, serving))
    outcome = {}
    for r, (healthy, entity) in zip(serving, results, strict=True):
        if entity:
            rows.save_where(ctx.engine, r.id, {"entity_id": None}, entity_id=entity)
        d = decide(Status(r.status), r.health_failures, healthy)
        status = Status(r.status)
        if d.to is not None:
            values = {"health_failures": d.failures}
            transition(ctx.engine, r.id, expected=status, to=d.to, message=d.line, values=values, now=ctx.now,
                       on_transition=ctx.on_transition)  # fmt: skip
        elif d.failures != r.health_failures:
            rows.save_where(ctx.engine, r.id, {"status": r.status}, health_failures=d.failures)
        outcome[r.id] = "ok" if healthy else f"failed ({d.failures})"
    return outcome
