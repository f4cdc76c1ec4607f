"""Crash detection latency: from `docker kill` returning to the committed `crashed` row, and to the
status event on Redis.

    python bench/crash_detection.py [N]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import redis
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import bench_stack, summary
from deployer.store.events import status_channel
from deployer.store.models import Deployment
from tests.support.zips import zip_folder

SAMPLE = Path(__file__).parents[1] / "samples" / "python-agent"
_dep = Deployment.__table__  # type: ignore[attr-defined]


def main(n: int) -> None:
    bundle, keypair = zip_folder(SAMPLE), (SAMPLE / "keypair.json").read_bytes()
    to_row, to_event, kill_calls, row_from_call, event_from_call = [], [], [], [], []
    with bench_stack() as s:
        r = redis.Redis.from_url(s.settings.redis_url)
        for i in range(n):
            dep = s.api.upload(bundle, keypair, name=f"victim {i}").json()["id"]
            s.api.wait_status(dep, "running")
            pubsub = r.pubsub()
            pubsub.subscribe(status_channel(dep))
            pubsub.get_message(timeout=1)  # the subscribe confirmation
            seen: list[float] = []

            def listen(p: redis.client.PubSub = pubsub, out: list[float] = seen) -> None:
                while not out:
                    m = p.get_message(timeout=5)
                    if m and m["type"] == "message" and json.loads(m["data"])["status"] == "crashed":
                        out.append(time.perf_counter())

            listener = threading.Thread(target=listen)
            listener.start()
            victim = s.docker.containers.get(f"deployer-{dep}")
            t_call = time.perf_counter()
            victim.kill()
            t0 = time.perf_counter()
            kill_calls.append((t0 - t_call) * 1000)
            with s.engine.connect() as conn:
                while conn.execute(select(_dep.c.status).where(_dep.c.id == dep)).scalar_one() != "crashed":
                    conn.rollback()
            to_row.append((time.perf_counter() - t0) * 1000)
            row_from_call.append((time.perf_counter() - t_call) * 1000)
            listener.join(timeout=10)
            to_event.append((seen[0] - t0) * 1000)
            event_from_call.append((seen[0] - t_call) * 1000)
            pubsub.close()
    print(summary("the docker kill call itself", kill_calls))
    print(summary("docker kill returned → committed crashed row", to_row))
    print(summary("docker kill returned → crashed event on Redis (negative: before kill returned)", to_event))
    print(summary("docker kill called → committed crashed row", row_from_call))
    print(summary("docker kill called → crashed event on Redis", event_from_call))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
