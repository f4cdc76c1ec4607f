"""The first hour of a new user, from `deployer up` to a second deploy, with the README's own commands.

The commands come from the README's "Run it" section and run through a shell as written; only the
`<id>` placeholder is filled in (with the slug the deploy printed). The virtual environment and `pip
install` lines are not run: this interpreter has the project installed already.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from deployer.lifecycle import containers
from deployer.settings import load_settings
from deployer.store.db import make_engine
from deployer.store.models import Deployment
from tasks.schedules import state_store
from tests.e2e.upstack import up_env
from tests.support.stack import free_port, wait_for

ROOT = Path(__file__).parents[2]
BIN = str(Path(sys.executable).parent)
QUIET_WINDOW_SEC = 31  # covers a reconcile-runtime run (every 30 s) and several of every other schedule
ERROR_MARKS = ("SecurityWarning", "No hostname was supplied", "invalid traversal path", '"level":"error"',
               "Traceback", "exited with")  # fmt: skip

pytestmark = pytest.mark.timeout(900)


def run_it_blocks() -> list[list[str]]:
    """The shell blocks of the README's "Run it" section, as lists of command lines."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Run it\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [[ln for ln in b.splitlines() if ln.strip()] for b in blocks]


class Shell:
    """A long-running command started through bash in its own process group, as a terminal would."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            self.proc = subprocess.Popen(["bash", "-c", command], env=env, cwd=ROOT, stdout=out, stderr=out,
                                         start_new_session=True)  # fmt: skip

    def output(self) -> str:
        return self.log.read_bytes()[self.offset :].decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 300) -> None:
        def seen() -> bool:
            assert self.proc.poll() is None or text in self.output(), self.output()[-4000:]
            return text in self.output()

        wait_for(seen, timeout=timeout, what=repr(text))

    def ctrl_c(self) -> int:
        """What Ctrl-C in a terminal does: SIGINT to the foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=120)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def sh(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["bash", "-c", line], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"$ {line}\n{result.stdout}\n{result.stderr}"
    return result


def through_caddy(caddy_http: int, slug: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{caddy_http}/x", headers={"Host": f"{slug}.apps.test"}, timeout=5)


def answers(caddy_http: int, slug: str) -> bool:
    try:
        return through_caddy(caddy_http, slug).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    extra = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(home)}
    return up_env(tmp_path, free_port(), free_port(), free_port(), **extra)


@pytest.fixture
def cleanup(env: dict[str, str], docker_client: Any) -> Iterator[list[Shell]]:
    shells: list[Shell] = []
    yield shells
    for shell in shells:
        shell.kill()
    settings = load_settings(env)
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        ids = [str(i) for i in conn.execute(select(Deployment.__table__.c.id)).scalars()]  # type: ignore[attr-defined]
    engine.dispose()
    for dep in ids:
        containers.remove(docker_client, containers.container_name(dep), grace_sec=0)


def test_the_readme_commands_deploy_and_a_second_up_after_ctrl_c_brings_the_running_agent_back(
    tmp_path: Path, env: dict[str, str], cleanup: list[Shell], base_images: None, docker_client: Any
) -> None:
    setup, user = run_it_blocks()
    assert setup[0].startswith("python3 -m venv .venv") and setup[-1] == "deployer up"
    caddy_http = int(env["CADDY_HTTP_LISTEN"].rsplit(":", 1)[1])
    log = tmp_path / "up.log"

    first = Shell(setup[-1], env, log)
    cleanup.append(first)
    first.wait_for("deployer is up")
    assert f"export DEPLOYER_URL={env['DEPLOYER_URL']}" in first.output()

    slug = ""
    for line in user:
        if line.startswith("export "):  # `export NAME=$(…)`: evaluate it, and keep it for the next lines
            name = line.split()[1].split("=", 1)[0]
            env[name] = sh(f'{line}; printf %s "${name}"', env).stdout
            continue
        done = sh(line.replace("<id>", slug), env)
        if line.startswith("deployer deploy"):
            slug = re.search(r"^slug:\s+(\S+)", done.stdout, re.M).group(1)  # type: ignore[union-attr]
            assert done.stdout.strip().splitlines()[-1] == f"running: http://{slug}.apps.test"
        if line.startswith("deployer logs -t"):
            assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} +system status: running", done.stdout, re.M)
    assert slug, "the README's commands deploy something"
    # the last command restarted it: it comes back from its built image
    wait_for(lambda: answers(caddy_http, slug), timeout=180, what="the restarted agent through Caddy")
    assert through_caddy(caddy_http, slug).json() == {"agent": "echo-agent", "path": "/x"}

    dep_id = re.search(r"^id:\s+(\S+)$", sh(f"deployer status {slug}", env).stdout, re.M).group(1)  # type: ignore[union-attr]
    assert first.ctrl_c() == 0, first.output()[-3000:]
    assert "all stopped" in first.output()
    container = docker_client.containers.get(containers.container_name(dep_id))
    assert container.status == "running", "Ctrl-C leaves deployments running"
    with pytest.raises(requests.ConnectionError):
        through_caddy(caddy_http, slug)  # the Caddy `up` started went with it

    second = Shell(setup[-1], env, log)
    cleanup.append(second)
    second.wait_for("deployer is up")
    wait_for(lambda: answers(caddy_http, slug), timeout=60, what="the route put back by the second up")
    assert through_caddy(caddy_http, slug).json() == {"agent": "echo-agent", "path": "/x"}
    assert re.search(r"^status:\s+running$", sh(f"deployer status {slug}", env).stdout, re.M)
    for line in second.output().splitlines():
        assert not any(mark in line for mark in ERROR_MARKS), line

    unknown = through_caddy(caddy_http, "no-such-agent")
    assert unknown.status_code == 404 and "No deployment is running at no-such-agent.apps.test" in unknown.text
    sh(f"deployer stop {slug}", env)
    stopped = through_caddy(caddy_http, slug)
    assert stopped.status_code == 404 and "it is stopped, or it does not exist" in stopped.text

    assert second.ctrl_c() == 0, second.output()[-3000:]
    home = Path(env["HOME"])
    assert not (home / ".gunicorn").exists() and not (home / ".config" / "caddy").exists()
    assert (Path(env["DEPLOYER_DATA_ROOT"]) / "caddy" / "caddy.json").is_file()
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True).stdout
    assert leftover.strip() == ""


def test_an_idle_deployer_up_prints_at_most_a_few_lines_a_minute(
    tmp_path: Path, env: dict[str, str], cleanup: list[Shell]
) -> None:
    env.update(DEPLOYER_HEALTH_INTERVAL_SEC="5", DEPLOYER_METRICS_INTERVAL_SEC="5")
    up = Shell("deployer up --skip-images", env, tmp_path / "up.log")  # never builds images
    cleanup.append(up)
    up.wait_for("deployer is up")
    up.wait_for(" ready.")  # the worker's last start-up line
    startup = up.output()
    for line in startup.splitlines():
        assert not any(mark in line for mark in ERROR_MARKS), line

    started, window_start = len(startup), time.time()
    store = state_store(load_settings(env))

    def window_over() -> bool:
        assert up.proc.poll() is None, up.output()[-3000:]
        return time.time() - window_start >= QUIET_WINDOW_SEC

    wait_for(window_over, timeout=QUIET_WINDOW_SEC + 30, what="the measuring window", interval=0.5)
    printed = up.output()[started:].splitlines()
    # the schedules did run meanwhile, quietly
    for name in ("drain-queue", "reconcile-stops", "probe-health", "sample-metrics", "reconcile-runtime"):
        last = store.get(name).last_success
        assert last is not None and last > window_start, name
    assert len(printed) <= 2, "\n".join(printed)
    assert up.ctrl_c() == 0


def test_up_with_flower_runs_flower_and_stops_it_with_the_rest(
    tmp_path: Path, env: dict[str, str], cleanup: list[Shell]
) -> None:
    port = free_port()
    up = Shell(f"deployer up --skip-images --flower --flower-port {port}", env, tmp_path / "up.log")
    cleanup.append(up)
    up.wait_for("deployer is up")
    assert f"flower: http://127.0.0.1:{port}/" in up.output()

    def flower_answers() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/workers", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(flower_answers, timeout=60, what="flower")
    assert up.ctrl_c() == 0, up.output()[-3000:]
    assert "flower exited" not in up.output()
    leftover = subprocess.run(["pgrep", "-f", f"--port={port}"], capture_output=True, text=True).stdout
    assert leftover.strip() == ""
