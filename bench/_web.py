"""The web app as production runs it, for benchmarks: `deployer serve` (gunicorn, gthread)."""

from __future__ import annotations

import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from deployer.settings import Settings
from tests.support.stack import GroupProcess, settings_env, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebProcess(GroupProcess):
    def __init__(self, settings: Settings, port: int, *, workers: int, threads: int) -> None:
        cmd = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--threads", str(threads)]  # fmt: skip
        env = settings_env(settings)
        env.pop("DEPLOYER_TEST_DATABASE_URL", None)
        self._spawn(cmd, env, Path(tempfile.mkdtemp()), "web")
        self.url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            self._dead()
            try:
                return requests.get(f"{self.url}/api/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, timeout=60, what="web health")


@contextmanager
def web(settings: Settings, *, workers: int = 1, threads: int = 640) -> Iterator[WebProcess]:
    proc = WebProcess(settings, free_port(), workers=workers, threads=threads)
    try:
        yield proc
    finally:
        proc.stop()
