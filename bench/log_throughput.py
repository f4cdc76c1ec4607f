"""Log throughput: a container prints N numbered lines at full speed; how fast they reach Postgres
through a tailer, and how many are lost or duplicated. Two floors, in the same run: Docker delivering
the same log as raw bytes (no parsing, no database), and PostgreSQL taking the same rows by COPY from
memory in the tailer's batch size (no Docker, no parsing) — no tailer can beat either. docker-py's own
frame reader is shown for reference. The tailer runs three times on the same log, and the CPU each
party spent per line (this process, dockerd, PostgreSQL) is shown: on a machine with few cores
their sum, not any one of them, sets the rate.

    python bench/log_throughput.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import fresh_database
from deployer.context import build_context
from deployer.lifecycle.dockerapi import open_log_stream
from deployer.settings import load_settings
from deployer.store.db import make_engine
from deployer.store.loglines import append_lines
from deployer.store.models import DeploymentLog
from tests.support.rows import make_deployment_row
from watcher.chunked import body_reader
from watcher.tailer import BATCH_LINES, Tailer

_log = DeploymentLog.__table__  # type: ignore[attr-defined]
PRINT = "import sys\nfor i in range(1, {n} + 1): sys.stdout.write(f'line {{i}}\\n')\nsys.stdout.flush()\n"


def main(n: int) -> None:
    with fresh_database() as db:
        run(db, n)


def dockerd_floor(client: Any, container_id: str) -> float:
    """Seconds for Docker to deliver the whole log, read raw: what no tailer can beat."""
    t0 = time.perf_counter()
    resp = open_log_stream(client, container_id, follow=False)
    body = body_reader(resp)
    while body.read1(1 << 16):
        pass
    resp.close()
    return time.perf_counter() - t0


def database_floor(engine: Any, n: int) -> float:
    """Seconds for PostgreSQL to take n rows of the same shape, COPYed in the tailer's batches."""
    dep = make_deployment_row(engine)
    batches = [[("stdout", f"line {i}", f"2026-12-02T00:00:00.{i:09d}Z") for i in range(a, min(a + BATCH_LINES, n + 1))]
               for a in range(1, n + 1, BATCH_LINES)]  # fmt: skip
    t0 = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            append_lines(conn, dep, batch)
    return time.perf_counter() - t0


def cpu_seconds(pattern: str) -> float:
    """User + system CPU of the processes whose command line matches (dockerd, postgres)."""
    pids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def tail_once(ctx: Any, engine: Any, container_id: str, n: int) -> tuple[float, int, int, int, bool, str]:
    dep = make_deployment_row(engine)
    before = (time.process_time(), cpu_seconds("dockerd"), cpu_seconds("postgres"))
    t0 = time.perf_counter()
    tailer = Tailer(ctx, dep, container_id, (0, 0))
    tailer.start()
    tailer.join(timeout=600)
    elapsed = time.perf_counter() - t0
    after = (time.process_time(), cpu_seconds("dockerd"), cpu_seconds("postgres"))
    us = [(b - a) / n * 1e6 for a, b in zip(before, after, strict=True)]
    cpu = f"CPU per line: tailer {us[0]:.1f} µs, dockerd {us[1]:.1f} µs, PostgreSQL {us[2]:.1f} µs"
    with engine.connect() as conn:
        texts = list(conn.execute(select(_log.c.text).where(_log.c.deployment_id == dep)
                                  .order_by(_log.c.line_no)).scalars())  # fmt: skip
    expected = [f"line {i}" for i in range(1, n + 1)]
    lost = len(set(expected) - set(texts))
    return elapsed, len(texts), lost, len(texts) - len(set(texts)), texts == expected, cpu


def run(db: str, n: int, rounds: int = 3) -> None:
    engine = make_engine(db)
    client = docker.from_env(timeout=600)
    env = {"DEPLOYER_DATA_ROOT": tempfile.mkdtemp(), "DATABASE_URL": db, "DEPLOYER_SKIP_CADDY": "true",
           "DEPLOYER_LOG_RATE_LINES": "0"}  # measures the tailer itself, not the per-deployment budget
    ctx = build_context(load_settings(env), engine=engine, docker=client)
    container = client.containers.run("deployer/agent-base:latest", ["python", "-c", PRINT.format(n=n)], detach=True)
    try:
        container.wait(timeout=300)  # all output is in Docker's log: measure the tailer, not the printer
        raw = dockerd_floor(client, container.id)
        t0 = time.perf_counter()
        frames = sum(1 for _ in client.api.logs(container.id, stream=True, follow=False, timestamps=True))
        sdk = time.perf_counter() - t0
        database = database_floor(engine, n)
        results = [tail_once(ctx, engine, container.id, n) for _ in range(rounds)]
    finally:
        container.remove(force=True)
        engine.dispose()
    print(f"floor: Docker delivers the raw log of {n} lines in {raw:.2f} s ({n / raw:,.0f} lines/s)")
    print(f"floor: PostgreSQL takes {n} rows by COPY in batches of {BATCH_LINES} in {database:.2f} s "
          f"({n / database:,.0f} lines/s)")  # fmt: skip
    print(f"reference: docker-py's own frame reader: {frames} frames in {sdk:.2f} s ({frames / sdk:,.0f} lines/s)")
    for elapsed, stored, lost, duplicated, in_order, cpu in results:
        print(f"tailer into PostgreSQL: {stored} lines in {elapsed:.2f} s ({stored / elapsed:,.0f} lines/s); "
              f"lost {lost}, duplicated {duplicated}, in order: {in_order}; {cpu}")  # fmt: skip
    rates = sorted(stored / elapsed for elapsed, stored, *_ in results)
    median = rates[len(rates) // 2]
    print(f"median of {rounds}: {median:,.0f} lines/s ({median * database / n:.0%} of the PostgreSQL floor)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
