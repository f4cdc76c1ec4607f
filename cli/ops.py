"""Operator commands that run processes on this host: images, worker, beat, up."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import click
import requests

from deployer import images
from deployer.settings import Settings


def docker_client() -> object:
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise click.ClickException(f"Docker is not reachable: {exc}") from None
    return client


def progress(line: str) -> None:
    click.echo(f"  {line}", err=True)


def ensure_images(settings: Settings) -> None:
    click.echo("checking base images…", err=True)
    images.ensure_base_images(docker_client(), settings, progress)


def celery_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "tasks.celery", *args]


def worker_cmd(settings: Settings, concurrency: int | None = None) -> list[str]:
    n = concurrency or settings.worker_concurrency
    return celery_cmd("worker", "-l", "info", "-c", str(n), "-Q", settings.queue, "-n", f"{settings.queue}@%h")


def beat_cmd(settings: Settings) -> list[str]:
    # the slim entry: no task bodies, so the schedule runtime never imports Flask or Docker
    return [sys.executable, "-m", "celery", "-A", "tasks.beat", "beat", "-l", "info",
            "-s", str(settings.data_root / "celerybeat-schedule")]  # fmt: skip


def caddy_reachable(settings: Settings) -> bool:
    try:
        requests.get(f"{settings.caddy_admin_url}/config/", timeout=1)
        return True
    except requests.RequestException:
        return False


def caddy_cmd(settings: Settings) -> list[str]:
    """A Caddy child whose admin API listens where CADDY_ADMIN_URL points."""
    caddy = shutil.which("caddy")
    if caddy is None:
        raise click.ClickException(
            f"Caddy is not running at {settings.caddy_admin_url} and not installed; install caddy or set "
            "DEPLOYER_SKIP_CADDY=true"
        )
    admin = urlsplit(settings.caddy_admin_url).netloc
    config = Path(tempfile.mkdtemp(prefix="deployer-caddy-")) / "caddy.json"
    config.write_text(json.dumps({"admin": {"listen": admin}}))
    return [caddy, "run", "--config", str(config)]


class Supervisor:
    """Runs child processes; when one exits or a signal arrives, stops them all."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, name: str, cmd: list[str]) -> None:
        click.echo(f"starting {name}: {' '.join(cmd[:6])}…", err=True)
        self.children[name] = subprocess.Popen(cmd, start_new_session=True)

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        click.echo(f"\nreceived {signal.Signals(signum).name}; stopping…", err=True)
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._signal)
        signal.signal(signal.SIGTERM, self._signal)
        code = 0
        while not self.stopping:
            for name, proc in self.children.items():
                if proc.poll() is not None:
                    click.echo(f"{name} exited with {proc.returncode}; stopping the rest", err=True)
                    code, self.stopping = 1, True
                    break
            else:
                time.sleep(0.2)
        self.stop()
        return code

    def stop(self, grace: float = 20) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, proc in self.children.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"{name} did not stop in time; killing it", err=True)
                proc.kill()
                proc.wait()
        click.echo("all stopped", err=True)
