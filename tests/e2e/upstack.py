"""`deployer up` as a test fixture: the whole single-host stack on embedded defaults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.stack import free_port, wait_for

DEPLOYER = str(Path(sys.executable).with_name("deployer"))


@dataclass
class Up:
    env: dict[str, str]
    log: Path
    caddy_http: int
    proc: subprocess.Popen[bytes]
    exit_code: int | None = None

    def token(self) -> str:
        out = subprocess.run([DEPLOYER, "token", "create", "--name", "up"], env=self.env, capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        return out.strip().splitlines()[-1]


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/health", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def up_env(tmp_path: Path, port: int, caddy_admin: int, caddy_http: int, **extra: str) -> dict[str, str]:
    """`deployer up`'s environment for a test: its own data root, ports and Caddy, nothing inherited
    from the deployer's variables of the shell that runs the tests."""
    return {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("DEPLOYER_", "DATABASE_URL", "CELERY_", "CADDY_", "TRACE_", "REDIS_URL"))},
        "DEPLOYER_DATA_ROOT": str(tmp_path / "data"),
        "CADDY_ADMIN_URL": f"http://127.0.0.1:{caddy_admin}",
        "CADDY_HTTP_LISTEN": f"127.0.0.1:{caddy_http}",
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
        "DEPLOYER_PUBLIC_SCHEME": "http",
        "DEPLOYER_PORT_MIN": "16000",
        "DEPLOYER_PORT_MAX": "16099",
        "DEPLOYER_WORKER_CONCURRENCY": "2",
        "DEPLOYER_URL": f"http://127.0.0.1:{port}",
        **extra,
    }  # fmt: skip


@contextmanager
def running_up(tmp_path: Path, **extra: str) -> Iterator[Up]:
    port, caddy_admin, caddy_http = free_port(), free_port(), free_port()
    env = up_env(tmp_path, port, caddy_admin, caddy_http, **extra)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([DEPLOYER, "up", "--port", str(port)], env=env, stdout=out, stderr=out,
                                start_new_session=True)  # fmt: skip
    up = Up(env, log, caddy_http, proc)
    try:
        wait_for(lambda: b"deployer is up" in log.read_bytes() or proc.poll() is not None, timeout=300, what="up")
        assert proc.poll() is None, log.read_text()
        wait_for(lambda: _healthy(env["DEPLOYER_URL"]), timeout=60, what="web")
        yield up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers; `up` stops its children itself
        up.exit_code = proc.wait(timeout=90)
