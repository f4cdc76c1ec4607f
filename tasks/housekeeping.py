"""Periodic and kicked tasks that are not a single deployment's stage."""

from __future__ import annotations

from celery import Celery

from deployer.drain import drain
from deployer.image_gc import prune_images
from deployer.metrics import sample_metrics
from deployer.probes import probe_all
from deployer.reconcile import reconcile_runtime
from deployer.retention import apply_retention, cutoffs
from deployer.teardown import reconcile_stops
from tasks.context import context_for


def register(app: Celery) -> None:
    from tasks.stages import send_chain

    @app.task(name="deployer.drain_queue", shared=False)
    def drain_queue() -> int:
        return drain(context_for(app), lambda dep, token, status: send_chain(app, dep, token, status))

    @app.task(name="deployer.reconcile_runtime", shared=False)
    def reconcile_runtime_task() -> dict[str, list[str]]:
        report = reconcile_runtime(context_for(app))
        return {"crashed": report.crashed, "removed": report.removed, "routes": report.routes}

    @app.task(name="deployer.probe_health", shared=False)
    def probe_health() -> dict[str, str]:
        return probe_all(context_for(app))

    @app.task(name="deployer.sample_metrics", shared=False)
    def sample_metrics_task() -> int:
        return sample_metrics(context_for(app))

    @app.task(name="deployer.retention", shared=False)
    def retention() -> dict[str, int]:
        ctx = context_for(app)
        report = apply_retention(ctx.engine, cutoffs(ctx.now(), ctx.settings))
        images = prune_images(ctx.engine, ctx.docker, now=ctx.now(), keep_days=ctx.settings.image_retention_days)
        return {**report, "images": len(images.removed), "image_errors": len(images.errors)}

    @app.task(name="deployer.reconcile_stops", shared=False)
    def reconcile_stops_task() -> int:
        return reconcile_stops(context_for(app))
