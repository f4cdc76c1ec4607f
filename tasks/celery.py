"""Entry point for `celery -A tasks …`: the one place that builds the app from the environment."""

from __future__ import annotations

import warnings

from celery.exceptions import SecurityWarning
from celery.signals import worker_process_init

from deployer.settings import load_settings
from tasks.context import reset
from tasks.worker import create_celery

# Celery warns whenever its worker runs as root. The worker drives the Docker socket, which is root's
# power already, and this app accepts JSON only (the pickle risk Celery refuses root for cannot
# arise); `deployer up` on a single host is commonly run as root, and the warning would be printed on
# every start as if something were wrong.
warnings.filterwarnings("ignore", category=SecurityWarning)

app = create_celery(load_settings())


@worker_process_init.connect
def _fresh_context(**_: object) -> None:
    reset()
