"""The Celery app's configuration, built from settings by a function (nothing happens at import time).
The worker's app, with the task bodies, is `tasks.worker.create_celery`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Celery
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from beat_schedule import beat_schedule
from deployer.settings import Settings
from tasks.limits import HOUSEKEEPING_LIMIT, longest_limit


def broker_options(settings: Settings) -> dict[str, Any]:
    longest = longest_limit(settings)
    if settings.celery_broker_url.startswith("filesystem://"):
        folder = Path(settings.data_root) / "broker"
        for sub in ("queue", "processed", "control", "staging"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "staging_folder": str(folder / "staging"),  # tasks.fsbroker: whole files only
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
    return {"visibility_timeout": longest * 2, "socket_keepalive": True}


class QuietPeriodic(logging.Filter):
    """Drops the INFO lines of routine periodic runs: "Task … received", "Task … succeeded" and
    beat's "Sending due task …" for the tasks beat runs every few seconds (drain_queue and
    reconcile_stops run every second: ~360 lines a minute of nothing happening). Failures, retries
    and everything about lifecycle stages still log; `-l debug` shows the routine lines again."""

    def __init__(self, tasks: set[str]) -> None:
        super().__init__()
        self.tasks = tasks

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        args = record.args
        if isinstance(args, dict):  # celery.app.trace and celery.worker.strategy: a context dict
            return not (record.msg in (LOG_RECEIVED, LOG_SUCCESS) and args.get("name") in self.tasks)
        if isinstance(args, tuple) and len(args) == 2 and str(record.msg).startswith("Scheduler: Sending due task"):
            return args[1] not in self.tasks
        return True


QUIET_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


def quiet_periodic_logs(settings: Settings) -> None:
    """Installs `QuietPeriodic` for every task of the beat schedule (once per process)."""
    tasks = {entry["task"] for entry in beat_schedule(settings).values()}
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietPeriodic) for f in logger.filters):
            logger.addFilter(QuietPeriodic(tasks))


def housekeeping_queue(settings: Settings) -> str:
    """The queue of the periodic and kicked tasks (drain_queue, reconcile_stops, probes, …): apart
    from the stage tasks, so a deployment's chain reads on its own in Flower. Workers consume both."""
    return f"{settings.queue}-housekeeping"


def worker_queues(settings: Settings) -> str:
    """`celery worker -Q` for a worker that runs everything: the stages and the housekeeping."""
    return f"{settings.queue},{housekeeping_queue(settings)}"


def task_routes(settings: Settings) -> dict[str, dict[str, str]]:
    queue = housekeeping_queue(settings)
    return {entry["task"]: {"queue": queue} for entry in beat_schedule(settings).values()}


def base_app(settings: Settings) -> Celery:
    """The app's configuration alone: what beat needs (it sends tasks by name and runs none)."""
    broker = settings.celery_broker_url
    if broker.startswith("filesystem://"):
        from tasks.fsbroker import register

        broker = register() + broker.removeprefix("filesystem")
    app = Celery("deployer", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=broker_options(settings),
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=settings.queue,
        task_routes=task_routes(settings),
        # Events for monitors (Flower): each task's received/started/succeeded, and its sending.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_time_limit=HOUSEKEEPING_LIMIT,
        task_soft_time_limit=HOUSEKEEPING_LIMIT - 10,
        beat_schedule=beat_schedule(settings),
        beat_scheduler="tasks.leader:LeaderScheduler",
        timezone="UTC",
        worker_hijack_root_logger=False,
        # Monitors' (Flower's) event queues: gone a minute after their consumer, events kept 5 s.
        # Redis honours both; the embedded broker honours the expiry itself (tasks.fsbroker).
        event_queue_expires=60.0,
        event_queue_ttl=5.0,
    )
    app.conf.deployer_settings = settings
    quiet_periodic_logs(settings)
    return app
