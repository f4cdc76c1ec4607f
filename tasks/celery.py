"""Entry point for `celery -A tasks …`: the one place that builds the app from the environment."""

from __future__ import annotations

from celery.signals import worker_process_init

from deployer.settings import load_settings
from tasks.app import create_celery
from tasks.context import reset

app = create_celery(load_settings())


@worker_process_init.connect
def _fresh_context(**_: object) -> None:
    reset()
