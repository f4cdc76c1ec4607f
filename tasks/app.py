"""The Celery app, built from settings by a function (nothing happens at import time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery

from beat_schedule import beat_schedule
from deployer.settings import Settings

# Hard limits per stage (seconds); the soft limit is 90% of it. The broker's visibility timeout must
# stay above the longest, or an unacked stage is handed to a second worker while still running.
STAGE_LIMITS = {
    "unpacking": 120,
    "allocating_port": 60,
    "writing_config": 60,
    "building": 1800,
    "starting": 180,
    "registering_route": 60,
    "running": 60,
}
HOUSEKEEPING_LIMIT = 60


def stage_limit(stage: str, settings: Settings) -> int:
    if stage == "health_checking":
        return settings.boot_health_timeout_ms // 1000 + 60
    return STAGE_LIMITS[stage]


def broker_options(settings: Settings) -> dict[str, Any]:
    longest = max([*STAGE_LIMITS.values(), stage_limit("health_checking", settings)])
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
        task_time_limit=HOUSEKEEPING_LIMIT,
        task_soft_time_limit=HOUSEKEEPING_LIMIT - 10,
        beat_schedule=beat_schedule(settings),
        beat_scheduler="tasks.leader:LeaderScheduler",
        timezone="UTC",
        worker_hijack_root_logger=False,
    )
    app.conf.deployer_settings = settings
    return app


def create_celery(settings: Settings) -> Celery:
    from tasks import housekeeping, runs, stages
    from traces.recorder import recorder_for
    from traces.watchers import install_celery

    app = base_app(settings)
    stages.register(app, settings)
    housekeeping.register(app)
    runs.connect(app)
    app.conf.deployer_recorder = recorder = recorder_for(settings)
    if recorder is not None:
        install_celery(app, recorder)
    return app
