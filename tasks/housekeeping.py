"""Periodic and kicked tasks that are not a single deployment's stage."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Celery

from deployer.lifecycle.drain import drain
from deployer.lifecycle.image_gc import prune_images
from deployer.lifecycle.teardown import reconcile_stops
from deployer.settings import Settings
from deployer.store.retention import apply_retention, cutoffs
from deployer.supervision.metrics import sample_metrics
from deployer.supervision.probes import probe_all
from deployer.supervision.reconcile import reconcile_runtime
from tasks.context import context_for
from tasks.limits import HOUSEKEEPING_LIMIT
from tasks.runs import SKIPPED
from tasks.schedules import overlap_lock, record_skip, state_store
from tasks.stages import send_chain

T = TypeVar("T")
LOCK_TTL_MS = (HOUSEKEEPING_LIMIT + 30) * 1000  # outlives the hard limit: a killed run's lock expires


def exclusive(settings: Settings, name: str, body: Callable[[], T]) -> T | dict[str, Any]:
    """Runs `body` unless another run of `name` holds its overlap lock; then records a skip."""
    with overlap_lock(settings, name, LOCK_TTL_MS) as held:
        if held:
            return body()
    state_store(settings).update(name, lambda s: record_skip(s, time.time()))
    return SKIPPED


def register(app: Celery) -> None:
    @app.task(name="deployer.drain_queue", shared=False)
    def drain_queue() -> int:
        return drain(context_for(app), lambda dep, token, status: send_chain(app, dep, token, status))

    @app.task(name="deployer.reconcile_runtime", shared=False)
    def reconcile_runtime_task() -> dict[str, Any]:
        def body() -> dict[str, Any]:
            report = reconcile_runtime(context_for(app))
            return {"crashed": report.crashed, "removed": report.removed, "routes": report.routes}

        return exclusive(app.conf.deployer_settings, "reconcile-runtime", body)

    @app.task(name="deployer.probe_health", shared=False)
    def probe_health() -> dict[str, str]:
        return probe_all(context_for(app))

    @app.task(name="deployer.sample_metrics", shared=False)
    def sample_metrics_task() -> int:
        return sample_metrics(context_for(app))

    @app.task(name="deployer.retention", shared=False)
    def retention() -> dict[str, Any]:
        def body() -> dict[str, Any]:
            ctx = context_for(app)
            report = apply_retention(ctx.engine, cutoffs(ctx.now(), ctx.settings))
            images = prune_images(ctx.engine, ctx.docker, now=ctx.now(), keep_days=ctx.settings.image_retention_days,
                                  installation=ctx.installation)
            return {**report, "images": len(images.removed), "image_errors": len(images.errors)}

        return exclusive(app.conf.deployer_settings, "retention", body)

    @app.task(name="deployer.trace_prune", shared=False)
    def trace_prune() -> Any:
        """Trace entries older than now - TRACE_PRUNE_HOURS, from this host's trace database."""
        from traces.runtime.server import prune

        settings: Settings = app.conf.deployer_settings
        return exclusive(settings, "trace-prune", lambda: {"pruned": prune(settings)})

    @app.task(name="deployer.reconcile_stops", shared=False)
    def reconcile_stops_task() -> int:
        return reconcile_stops(context_for(app))
