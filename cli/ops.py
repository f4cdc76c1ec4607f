"""Operator commands that run processes on this host: images, worker, beat, up."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType
from urllib.parse import urlsplit

import click
import requests

from deployer.lifecycle import images
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
    from tasks.app import worker_queues

    return celery_cmd("worker", "-l", "info", "-c", str(n), "-Q", worker_queues(settings), "-n", f"{settings.queue}@%h")


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


def caddy_cmd(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """A Caddy child whose admin API listens where CADDY_ADMIN_URL points, and its environment.
    Everything it writes stays in the data root (`<data root>/caddy`): its config file, and through
    the XDG directories its autosave and storage, not `~/.config/caddy`. It logs errors only (every
    admin request and config load is an INFO line otherwise)."""
    caddy = shutil.which("caddy")
    if caddy is None:
        raise click.ClickException(
            f"Caddy is not running at {settings.caddy_admin_url} and not installed; install caddy or set "
            "DEPLOYER_SKIP_CADDY=true"
        )
    home = settings.data_root / "caddy"
    home.mkdir(parents=True, exist_ok=True)
    admin = urlsplit(settings.caddy_admin_url).netloc
    config = home / "caddy.json"
    config.write_text(json.dumps({"admin": {"listen": admin},
                                  "logging": {"logs": {"default": {"level": "ERROR"}}}}))  # fmt: skip
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data")}
    return [caddy, "run", "--config", str(config)], env


def wait_for_caddy(settings: Settings, proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """Until the admin API answers (a child Caddy takes a moment to listen)."""
    deadline = time.monotonic() + timeout
    while not caddy_reachable(settings):
        if proc is not None and proc.poll() is not None:
            raise click.ClickException(f"Caddy exited with {proc.returncode} before its admin API answered")
        if time.monotonic() > deadline:
            raise click.ClickException(f"Caddy's admin API did not answer at {settings.caddy_admin_url}")
        time.sleep(0.1)  # polling a port that is not listening yet


def ensure_caddy_server(settings: Settings) -> None:
    """The server and its fallback route, before any process of ours writes a route."""
    from deployer.context import caddy_for

    admin = caddy_for(settings)
    if admin is not None:
        admin.ensure_server()


def flower_cmd(settings: Settings, port: int) -> list[str]:
    if importlib.util.find_spec("flower") is None:
        raise click.ClickException(
            "Flower is not installed: pip install -e '.[flower]' -c requirements/constraints.txt "
            "(or leave out --flower)"
        )
    return celery_cmd("flower", "--address=127.0.0.1", f"--port={port}", "--logging=warning")


class Supervisor:
    """Runs child processes; when one exits or a signal arrives, stops them all."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        click.echo(f"starting {name}: {' '.join(cmd[:6])}…", err=True)
        self.children[name] = proc = subprocess.Popen(cmd, start_new_session=True, env=env)
        return proc

    def wait(self, check: Callable[[], bool], timeout: float) -> bool:
        """Polls `check` until it holds (True), a child exits or a signal arrives (False)."""
        signal.signal(signal.SIGINT, self._signal)
        signal.signal(signal.SIGTERM, self._signal)
        deadline = time.monotonic() + timeout
        while not self.stopping and all(p.poll() is None for p in self.children.values()):
            if check():
                return True
            if time.monotonic() > deadline:
                click.echo(f"nothing answered within {timeout:.0f} s", err=True)
                return False
            time.sleep(0.2)  # between polls of a server that is starting
        return False

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
