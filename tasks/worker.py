"""The worker's Celery app: the configuration of `tasks.app` plus every task body.

Apart from `tasks.app` so the schedule runtime (beat) builds its app without importing the task
bodies, and so the task modules depend on the app's configuration and never the other way round."""

from __future__ import annotations

from celery import Celery

from deployer.settings import Settings
from tasks import housekeeping, runs, stages
from tasks.app import base_app
from traces.recorder.core import recorder_for
from traces.recorder.watchers import install_celery


def create_celery(settings: Settings) -> Celery:
    app = base_app(settings)
    stages.register(app, settings)
    housekeeping.register(app)
    runs.connect(app)
    app.conf.deployer_recorder = recorder = recorder_for(settings)
    if recorder is not None:
        install_celery(app, recorder)
    return app
