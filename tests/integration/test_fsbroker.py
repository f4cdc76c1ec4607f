"""The embedded broker (`deployer up`): a consumer never sees a half-written message file."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from kombu import Connection

from deployer.settings import load_settings
from tasks.app import base_app


def test_messages_appear_in_the_queue_folder_only_whole_while_a_consumer_races_the_writer(tmp_path: Path) -> None:
    app = base_app(load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path)}))
    queue_dir = tmp_path / "broker" / "queue"
    done = threading.Event()
    seen: list[dict[str, object]] = []

    def consume() -> None:  # what kombu's _get does: list, move away, read, parse
        grabbed = tmp_path / "grabbed"
        grabbed.mkdir()
        while not done.is_set() or any(queue_dir.iterdir()):
            for name in sorted(p.name for p in queue_dir.iterdir()):
                try:
                    target = Path(shutil.move(str(queue_dir / name), str(grabbed / name)))
                except OSError:
                    continue
                seen.append(json.loads(target.read_bytes()))

    reader = threading.Thread(target=consume)
    reader.start()
    with Connection(app.conf.broker_url, transport_options=app.conf.broker_transport_options) as conn:
        q = conn.SimpleQueue("race")
        for i in range(300):
            q.put({"i": i, "pad": "x" * 50_000})
        q.close()
    done.set()
    reader.join(30)
    assert len(seen) == 300  # every one parsed: none was caught half-written
    assert not any((tmp_path / "broker" / "staging").iterdir())
    assert app.conf.broker_url.startswith("deployerfs://")


def test_an_event_queue_nobody_polls_any_more_expires_instead_of_filling_the_queue_folder(tmp_path: Path) -> None:
    """What Flower leaves behind when it stops: a bound event queue the workers keep publishing to."""
    from celery.events import EventReceiver

    app = base_app(load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path)}))
    app.conf.event_queue_expires = 0.5  # seconds, as Celery's setting; 60 in production
    queue_dir = tmp_path / "broker" / "queue"

    def events_for(name: str) -> list[Path]:
        return [p for p in queue_dir.iterdir() if p.name.endswith(f".{name}.msg")]

    with app.connection_for_write() as conn:
        monitor = EventReceiver(conn, handlers={}, app=app)  # what Flower starts
        monitor.queue(conn.default_channel).declare()
        name = monitor.queue.name
        with app.events.Dispatcher(conn) as dispatcher:  # what a worker with events enabled sends
            dispatcher.send("worker-heartbeat")
            assert len(events_for(name)) == 1  # bound and alive: delivered
            alive = tmp_path / "broker" / "control" / f"{name}.alive"
            os.utime(alive, (alive.stat().st_mtime - 1, alive.stat().st_mtime - 1))  # last polled 1 s ago
            for _ in range(5):
                dispatcher.send("worker-heartbeat")
    assert events_for(name) == []  # the expired queue's messages went with it
    exchanges = (tmp_path / "broker" / "control").glob("*.exchange")
    assert not any(name in p.read_text() for p in exchanges)  # and no exchange delivers to it again
