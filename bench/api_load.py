"""API load: `GET /api/deployments` with 1 000 rows under 50 concurrent clients, against the web app
as production runs it (gunicorn gthread, PostgreSQL). The floor is `GET /api/health` (a database
ping through the same stack) under the same load, in the same run. Closed loop (each client sends
again as soon as it has its answer: the throughput the machine allows), then open loop (each client
polls at a fixed rate, as dashboards do: the latency a user sees below that throughput).

    python bench/api_load.py [requests_per_client]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import fresh_database, percentile
from bench._web import web
from deployer.settings import load_settings
from deployer.store import tokens
from deployer.store.db import make_engine
from tests.support.rows import make_deployment_row

CLIENTS = 50


def load(url: str, headers: dict[str, str], per_client: int, clients: int = CLIENTS) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        s = requests.Session()
        s.headers.update(headers)
        s.get(url, timeout=30).raise_for_status()  # connection made before the clock starts
        start.wait()
        mine = []
        for _ in range(per_client):
            t0 = time.perf_counter()
            s.get(url, timeout=30).raise_for_status()
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - t0


def paced(url: str, headers: dict[str, str], *, rate: float, seconds: float,
          clients: int = CLIENTS) -> tuple[list[float], float]:  # fmt: skip
    """Open loop: each client sends at fixed times (`rate` a second, staggered), as a dashboard polls.
    Latency counts from the planned send time, so a server that falls behind shows it."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 1.0

    def client(k: int) -> None:
        s = requests.Session()
        s.headers.update(headers)
        s.get(url, timeout=30).raise_for_status()
        mine = []
        for i in range(int(seconds * rate)):
            planned = start + (i + k / clients) / rate
            time.sleep(max(0.0, planned - time.perf_counter()))  # pacing, not synchronisation
            s.get(url, timeout=30).raise_for_status()
            mine.append((time.perf_counter() - planned) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def report(name: str, latencies: list[float], wall: float) -> None:
    print(f"{name}: {len(latencies)} requests, {len(latencies) / wall:,.0f} req/s, "
          f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms")  # fmt: skip


def main(per_client: int) -> None:
    with fresh_database() as db:
        engine = make_engine(db)
        for i in range(1000):
            make_deployment_row(engine, name=f"service {i}", status=("running", "stopped", "crashed")[i % 3])
        token = tokens.create_token(engine, "bench")[1]
        engine.dispose()
        settings = load_settings({"DATABASE_URL": db, "DEPLOYER_DATA_ROOT": tempfile.mkdtemp(),
                                  "DEPLOYER_SKIP_CADDY": "true"})  # fmt: skip
        with web(settings, workers=2, threads=64) as proc:
            auth = {"Authorization": f"Bearer {token}"}
            report("one client: GET /api/health", *load(f"{proc.url}/api/health", {}, 200, clients=1))
            report("one client: GET /api/deployments", *load(f"{proc.url}/api/deployments", auth, 200, clients=1))
            report(f"floor, {CLIENTS} clients: GET /api/health", *load(f"{proc.url}/api/health", {}, per_client))
            latencies, wall = load(f"{proc.url}/api/deployments", auth, per_client)
            body = requests.get(f"{proc.url}/api/deployments", headers=auth, timeout=30).json()
            assert body["total"] == 1000 and len(body["deployments"]) == 50
            report(f"{CLIENTS} clients: GET /api/deployments (1 000 rows, page of 50)", latencies, wall)
            for rate in (1.0, 2.0):
                report(f"{CLIENTS} clients polling {rate:g}/s each: GET /api/deployments",
                       *paced(f"{proc.url}/api/deployments", auth, rate=rate, seconds=20))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
