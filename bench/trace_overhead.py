"""Trace recorder overhead and signed ingest throughput.

1. A Flask request (`GET /api/deployments`, token check and two queries) with every watcher on
   (recording into a local SQLite trace file) against the same app with tracing off, interleaved in
   the same run: the p50 difference is what tracing costs a request.
2. Signed ingest: batches of 200 entries POSTed, signed, to `python -m traces serve` (gunicorn) and
   stored in its SQLite file: entries per second.

    python bench/trace_overhead.py [requests] [entries]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import percentile
from deployer.settings import load_settings
from deployer.store import tokens
from deployer.store.db import make_engine, upgrade
from tests.support.rows import make_deployment_row
from tests.support.stack import TraceRuntimeProcess, free_port, settings_env
from traces.recorder.core import ProxySink
from web import create_app


def request_overhead(n: int) -> None:
    root = Path(tempfile.mkdtemp())
    db = f"sqlite:///{root / 'app.sqlite'}"
    engine = make_engine(db)
    upgrade(engine)
    for i in range(50):
        make_deployment_row(engine, name=f"s{i}")
    token = tokens.create_token(engine, "bench")[1]
    base = {"DATABASE_URL": db, "DEPLOYER_DATA_ROOT": str(root), "DB_DATABASE_SQLITE": str(root / "trace.sqlite")}
    apps = {
        "off": create_app(load_settings(base), engine=engine, kick=lambda _n: None),
        "on": create_app(load_settings({**base, "TRACE_ENABLED": "true"}), engine=make_engine(db),
                         kick=lambda _n: None),
    }
    clients = {name: app.test_client() for name, app in apps.items()}
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(n + 100):
        for name in ("off", "on") if i % 2 else ("on", "off"):  # interleaved: drift hits both alike
            t0 = time.perf_counter()
            assert clients[name].get("/api/deployments", headers=headers).status_code == 200
            if i >= 100:  # warm-up excluded
                times[name].append((time.perf_counter() - t0) * 1000)
    rec = apps["on"].extensions["deployer"].recorder
    assert rec is not None and rec.flush(30)
    for name, values in times.items():
        print(f"tracing {name:>3}: p50 {percentile(values, 50):.3f} ms, p95 {percentile(values, 95):.3f} ms, "
              f"mean {statistics.fmean(values):.3f} ms over {len(values)} requests")  # fmt: skip
    print(f"p50 difference: {percentile(times['on'], 50) - percentile(times['off'], 50):.3f} ms "
          f"({rec.counters.recorded} entries recorded, {rec.counters.dropped} dropped, {rec.counters.failed} failed)")


def ingest(total: int, batch: int = 200) -> None:
    root = Path(tempfile.mkdtemp())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(root), "DB_DATABASE_SQLITE": str(root / "trace.sqlite"),
                              "TRACE_PROXY_URL": url, "TRACE_PROXY_KEY_ID": "bench", "TRACE_PROXY_SECRET": "x" * 32,
                              "TRACE_DASHBOARD_TOKEN": "t", "TRACE_PROXY_MODE": "batch"})  # fmt: skip
    proc = TraceRuntimeProcess([sys.executable, "-m", "traces"], settings_env(settings), root, port=port)
    try:
        proc.wait_up()
        sink = ProxySink(settings)
        now = int(time.time() * 1000)
        entries = [{"uuid": str(uuid.uuid4()), "batchId": f"b{i // 10}", "type": "query", "familyHash": None,
                    "content": {"sql": f"select {i}", "duration_ms": 0.4}, "tags": ["bench"], "isLatest": True,
                    "createdAt": now + i} for i in range(total)]  # fmt: skip
        t0 = time.perf_counter()
        for i in range(0, total, batch):
            sink.write(entries[i : i + batch])
        elapsed = time.perf_counter() - t0
        stored = requests.get(f"{url}/trace/api/stats", headers={"Authorization": "Bearer t"}, timeout=10).json()
        print(f"signed ingest: {total} entries in batches of {batch} in {elapsed:.2f} s "
              f"({total / elapsed:,.0f} entries/s); stored {stored['total']}")  # fmt: skip
    finally:
        proc.stop()


if __name__ == "__main__":
    request_overhead(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    ingest(int(sys.argv[2]) if len(sys.argv) > 2 else 20_000)
