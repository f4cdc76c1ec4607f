"""Each scheduled run's outcome, recorded from the worker (Celery signals) for `deployer schedule list`
and the beat's backoff. A run carries its schedule's name in the `schedule` message header (beat sets
it; so does `deployer schedule run`)."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from celery.signals import task_failure, task_postrun, task_prerun

from tasks.schedules import record_failure, record_start, record_success, state_store
from traces.recorder.watchers import schedule_of

SKIPPED = {"skipped": True}


def connect(app: Celery) -> None:
    def store() -> Any:
        return state_store(app.conf.deployer_settings)

    @task_prerun.connect(weak=False)
    def started(task: Any = None, **_: Any) -> None:
        name = schedule_of(task)
        if name and task.app is app:
            store().update(name, lambda s: record_start(s, time.time()))

    @task_postrun.connect(weak=False)
    def finished(task: Any = None, state: str | None = None, retval: Any = None, **_: Any) -> None:
        name = schedule_of(task)
        if name and task.app is app and state == "SUCCESS" and retval != SKIPPED:
            store().update(name, lambda s: record_success(s, time.time()))

    @task_failure.connect(weak=False)
    def failed(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        name = schedule_of(sender)
        if name and sender.app is app:
            store().update(name, lambda s: record_failure(s, f"{type(exception).__name__}: {exception}"))
