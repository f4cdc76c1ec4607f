from __future__ import annotations

from pathlib import Path

from beat_schedule import beat_schedule
from deployer.settings import load_settings
from tasks.app import worker_queues
from tasks.worker import create_celery


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


def test_housekeeping_tasks_go_to_their_own_queue_and_stages_to_the_main_one(tmp_path: Path) -> None:
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_QUEUE": "q1"})
    app = create_celery(settings)
    for entry in beat_schedule(settings).values():
        assert app.amqp.router.route({}, entry["task"])["queue"].name == "q1-housekeeping", entry["task"]
    assert app.amqp.router.route({}, "deployer.stage.building")["queue"].name == "q1"
    assert worker_queues(settings) == "q1,q1-housekeeping"


def test_workers_send_task_events_for_flower(tmp_path: Path) -> None:
    app = create_celery(load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path)}))
    assert app.conf.worker_send_task_events and app.conf.task_send_sent_event
