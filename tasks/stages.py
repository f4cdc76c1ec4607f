"""Thin stage tasks: load by id, call one domain stage, decide retry; and the chain that links them."""

from __future__ import annotations

from typing import Any

from celery import Celery, chain
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from deployer.errors import TransientError
from deployer.lifecycle.stages import STAGES, run_stage, stages_from
from deployer.lifecycle.teardown import fail
from deployer.settings import Settings
from deployer.store.states import Status
from tasks.context import context_for
from tasks.limits import stage_limit


def stage_task_name(stage: Status) -> str:
    return f"deployer.stage.{stage.value}"


def _make_stage(app: Celery, stage: Status, settings: Settings) -> None:
    hard = stage_limit(stage.value, settings)

    @app.task(name=stage_task_name(stage), bind=True, acks_late=True, time_limit=hard, soft_time_limit=int(hard * 0.9),
              max_retries=2, shared=False)  # fmt: skip
    def stage_task(self: Any, deployment_id: str, token: str) -> None:
        ctx = context_for(app)
        try:
            proceed = run_stage(ctx, stage, deployment_id, token)
        except TransientError as exc:
            raise self.retry(exc=exc, countdown=1) from None
        except SoftTimeLimitExceeded:
            raise TimeoutError(f"{stage.value} took longer than its limit of {int(hard * 0.9)} s") from None
        if not proceed:
            raise Ignore()  # the row moved on without this driver: end the chain quietly


def register(app: Celery, settings: Settings) -> None:
    for stage in STAGES:
        _make_stage(app, stage, settings)

    @app.task(name="deployer.stage_failed", shared=False)
    def stage_failed(request: Any, exc: BaseException, traceback: Any) -> None:
        deployment_id, token = request.args[0], request.args[1]
        stage = str(request.task).rsplit(".", 1)[-1]
        message = getattr(exc, "message", None) or f"{stage} failed: {type(exc).__name__}: {exc}"
        fail(context_for(app), deployment_id, message, driver_token=token)  # only this driver's row


def send_chain(app: Celery, deployment_id: str, token: str, status: Status) -> None:
    """Start (or resume) the pipeline for one row at `status`, each stage an immutable signature."""
    sigs = [app.signature(stage_task_name(s), args=(deployment_id, token), immutable=True) for s in stages_from(status)]
    chain(*sigs).apply_async(link_error=app.signature("deployer.stage_failed"))
