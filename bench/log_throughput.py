"""Log throughput: a container prints N numbered lines at full speed; how fast they reach Postgres
through a tailer, and how many are lost or duplicated. The floor is reading the same container's
log through the Docker API alone (no parsing, no database), in the same run.

    python bench/log_throughput.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import docker
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import fresh_database
from deployer.context import build_context
from deployer.db import make_engine
from deployer.models import DeploymentLog
from deployer.settings import load_settings
from deployer.tailer import Tailer
from tests.conftest import make_deployment_row

_log = DeploymentLog.__table__  # type: ignore[attr-defined]
PRINT = "import sys\nfor i in range(1, {n} + 1): sys.stdout.write(f'line {{i}}\\n')\nsys.stdout.flush()\n"


def main(n: int) -> None:
    with fresh_database() as db:
        run(db, n)


def run(db: str, n: int) -> None:
    engine = make_engine(db)
    client = docker.from_env(timeout=600)
    env = {"DEPLOYER_DATA_ROOT": tempfile.mkdtemp(), "DATABASE_URL": db, "DEPLOYER_SKIP_CADDY": "true"}
    settings = load_settings(env)
    ctx = build_context(settings, engine=engine, docker=client)
    dep = make_deployment_row(engine)
    container = client.containers.run("deployer/agent-base:latest", ["python", "-c", PRINT.format(n=n)], detach=True)
    try:
        container.wait(timeout=300)  # all output is in Docker's log: measure the tailer, not the printer
        t0 = time.perf_counter()
        raw = sum(1 for _ in client.api.logs(container.id, stream=True, follow=False, timestamps=True))
        floor = time.perf_counter() - t0
        t1 = time.perf_counter()
        tailer = Tailer(ctx, dep, container.id, (0, 0))
        tailer.start()
        tailer.join(timeout=600)
        elapsed = time.perf_counter() - t1
        with engine.connect() as conn:
            texts = list(conn.execute(select(_log.c.text).where(_log.c.deployment_id == dep)
                                      .order_by(_log.c.line_no)).scalars())  # fmt: skip
        expected = [f"line {i}" for i in range(1, n + 1)]
        lost = len(set(expected) - set(texts))
        duplicated = len(texts) - len(set(texts))
        in_order = texts == expected
    finally:
        container.remove(force=True)
        engine.dispose()
    print(f"floor: Docker API log read of {raw} frames: {floor:.2f} s ({raw / floor:,.0f} lines/s)")
    print(f"tailer into PostgreSQL: {len(texts)} lines in {elapsed:.2f} s ({len(texts) / elapsed:,.0f} lines/s); "
          f"lost {lost}, duplicated {duplicated}, in order: {in_order}")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
