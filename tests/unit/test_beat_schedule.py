from __future__ import annotations

from pathlib import Path

from beat_schedule import beat_schedule
from deployer.settings import load_settings
from tasks.app import create_celery


def test_every_scheduled_task_name_resolves_to_a_registered_task(tmp_path: Path) -> None:
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path)})
    app = create_celery(settings)
    schedule = beat_schedule(settings)
    expected = {"drain-queue", "reconcile-stops", "probe-health", "sample-metrics", "retention", "reconcile-runtime"}
    assert expected <= set(schedule)
    for name, entry in schedule.items():
        assert entry["task"] in app.tasks, name


def test_the_health_interval_comes_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_HEALTH_INTERVAL_SEC": "7"})
    assert beat_schedule(settings)["probe-health"]["schedule"] == 7.0
