"""Real processes for lifecycle tests: Caddy, a Celery worker and beat, and polling helpers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from deployer.settings import Settings
from tasks.app import worker_queues
from tests.support.zips import KEYPAIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls `check` until it returns something truthy; the deadline only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Caddy:
    def __init__(self, workdir: Path) -> None:
        self.admin_port, self.http_port = free_port(), free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "caddy.json"
        config.write_text(json.dumps({"admin": {"listen": f"127.0.0.1:{self.admin_port}"}}))
        env = {**os.environ, "HOME": str(workdir), "XDG_CONFIG_HOME": str(workdir / "cfg"),
               "XDG_DATA_HOME": str(workdir / "data")}  # fmt: skip
        self.log = (workdir / "caddy.log").open("wb")
        self.proc = subprocess.Popen(["caddy", "run", "--config", str(config)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        wait_for(self._up, timeout=30, what="caddy admin API")

    def _up(self) -> bool:
        assert self.proc.poll() is None, "caddy exited"
        try:
            return requests.get(f"{self.admin_url}/config/", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def get(self, host: str, path: str = "/") -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.http_port}{path}", headers={"Host": host}, timeout=5)

    def route_ids(self, server: str) -> list[str]:
        body = requests.get(f"{self.admin_url}/config/apps/http/servers/{server}/routes", timeout=5).json()
        return [r.get("@id", "") for r in (body or [])]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process load the same settings."""
    from deployer.settings import env_fields

    env = dict(os.environ)
    for f in env_fields():
        value = getattr(settings, f.name)
        env[f.metadata["env"]] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class GroupProcess:
    """A child in its own process group, so a test can SIGKILL all of it (pool children included)."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def _spawn(self, cmd: list[str], env: dict[str, str], logdir: Path, name: str, cwd: Path | None = None) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.log_path = logdir / f"{name}-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=cwd or Path(__file__).parents[2])  # fmt: skip

    def _dead(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.log_path.name} exited:\n{self.log_path.read_text()[-3000:]}")
        return False

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


class CeleryProcess(GroupProcess):
    """`celery -A tasks.celery worker` or `celery -A tasks.beat beat`."""

    def __init__(self, settings: Settings, kind: str, logdir: Path) -> None:
        if kind == "worker":
            args = ["worker", "-l", "info", "-c", "8", "-Q", worker_queues(settings), "--without-mingle",
                    "--without-gossip", "-n", f"test-{time.monotonic_ns()}@%h"]  # fmt: skip
        else:
            args = ["beat", "-l", "info", "-s", str(logdir / f"beat-{time.monotonic_ns()}")]
        module = "tasks.celery" if kind == "worker" else "tasks.beat"  # beat: the slim schedule runtime
        self._spawn([sys.executable, "-m", "celery", "-A", module, *args], settings_env(settings), logdir, kind)
        if kind == "worker":
            wait_for(lambda: b"ready." in self.log_path.read_bytes() or self._dead(), timeout=60, what="worker ready")


class Api:
    """The deployer's HTTP API as a test drives it."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def upload(self, bundle: bytes, keypair: bytes | None = KEYPAIR, **form: str) -> requests.Response:
        files: dict[str, Any] = {"project.zip": ("project.zip", bundle, "application/zip")}
        if keypair is not None:
            files["keypair.json"] = ("keypair.json", keypair, "application/json")
        return self.s.post(f"{self.url}/api/deployments", files=files, data=form, timeout=30)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.s.get(f"{self.url}{path}", params=params, timeout=30)

    def post(self, path: str) -> requests.Response:
        return self.s.post(f"{self.url}{path}", timeout=30)

    def row(self, deployment_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.get(f"/api/deployments/{deployment_id}").json()
        return body

    def lines(self, deployment_id: str) -> list[str]:
        return [ln["text"] for ln in self.get(f"/api/deployments/{deployment_id}/logs", limit=2000).json()["lines"]]

    def wait_status(self, deployment_id: str, *statuses: str, timeout: float = 180) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            row = self.row(deployment_id)
            return row if row["status"] in statuses else None

        try:
            result: dict[str, Any] = wait_for(settled, timeout=timeout, what=f"{deployment_id} to be {statuses}")
        except AssertionError:
            raise AssertionError(f"{self.row(deployment_id)}\n" + "\n".join(self.lines(deployment_id)[-40:])) from None
        return result


class WatcherProcess(GroupProcess):
    """`deployer watch`, with extra environment on top of the settings."""

    def __init__(self, settings: Settings, logdir: Path, **env: str) -> None:
        self._spawn([sys.executable, "-m", "cli.main", "watch"], {**settings_env(settings), **env}, logdir, "watcher")
        wait_for(lambda: b"start-up reconciliation" in self.log_path.read_bytes() or self._dead(), timeout=60,
                 what="watcher start")  # fmt: skip


def trace_runtime_up(url: str) -> bool:
    """Whether a trace runtime answers at `url` (its login page needs no token)."""
    try:
        return requests.get(f"{url}/trace/login", timeout=2).status_code == 200
    except requests.RequestException:
        return False


class TraceRuntimeProcess(GroupProcess):
    """`<command> serve --port N` of the trace runtime, up once its login page answers."""

    def __init__(self, command: list[str], env: dict[str, str], logdir: Path, *, name: str = "trace",
                 port: int | None = None, cwd: Path | None = None) -> None:  # fmt: skip
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._spawn([*command, "serve", "--port", str(port)], env, logdir, name, cwd)

    def wait_up(self) -> None:
        wait_for(lambda: self._dead() or trace_runtime_up(self.url), timeout=60, what=f"trace runtime {self.url}")
