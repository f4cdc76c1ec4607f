"""The whole compose stack, for real and offline: `docker-compose -f docker-compose.yml -f
docker-compose.offline.yml up -d` builds PostgreSQL, Redis and Caddy from Debian's packages and the
deployer's image on the bootstrapped Debian base (its Python packages from the index, through this
machine's TLS-intercepting proxy with the machine's CA bundle), starts all ten services in their
health order, and a sample deployed through the API on the dashboard host answers at its printed
https:// URL through the compose Caddy (its local CA trusted). Non-default host ports and a unique
project name keep it clear of this machine's PostgreSQL, Redis and Caddy and of other runs. Image
tags are kept between runs (their layers are reused); containers, volumes and networks are not."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from deployer.store.states import Status
from tests.integration.conftest import MACHINE_CA
from tests.support.stack import Api, free_port, wait_for
from tests.support.zips import zip_folder

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "samples"
FILES = ["-f", "docker-compose.yml", "-f", "docker-compose.offline.yml"]
LONG_RUNNING = ["postgres", "redis", "caddy", "web", "worker", "watcher", "schedules", "flower", "trace"]
DOMAIN = "compose.localhost"
RECONCILE_INTERVAL = 30.0  # beat_schedule: reconcile-runtime
STAGE_TASKS = {
    f"deployer.stage.{s.value}"
    for s in (Status.UNPACKING, Status.ALLOCATING_PORT, Status.WRITING_CONFIG, Status.BUILDING, Status.STARTING,
              Status.HEALTH_CHECKING, Status.REGISTERING_ROUTE, Status.RUNNING)
}  # fmt: skip

pytestmark = pytest.mark.timeout(1800)


@dataclass
class Stack:
    env: dict[str, str]
    https_port: int
    ca: Path
    deployments: list[str] = field(default_factory=list)

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker-compose", *FILES, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def containers(self) -> dict[str, dict[str, Any]]:
        """Each service's container, as `docker inspect` shows it."""
        ids = self.compose("ps", "-q", "-a").stdout.split()
        if not ids:
            return {}
        inspect = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True)
        shown = json.loads(inspect.stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in shown}

    def healthy(self) -> bool:
        found = self.containers()
        init = found.get("init", {}).get("State", {})
        if init.get("Status") != "exited":
            return False
        assert init.get("ExitCode") == 0, self.compose("logs", "--no-color", "init").stdout[-3000:]
        return all(found.get(s, {}).get("State", {}).get("Health", {}).get("Status") == "healthy" for s in LONG_RUNNING)

    def url(self, host: str) -> str:
        return f"https://{host}.{DOMAIN}:{self.https_port}"


def resolve_domain_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """`<anything>.compose.localhost` is this machine (as browsers and systemd-resolved treat *.localhost)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(host, str) and host.endswith(f".{DOMAIN}"):
            host = "127.0.0.1"
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def stack(tmp_path: Path, docker_client: Any, base_images: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    ca_bundle = ROOT / ".build-ca.pem"  # inside the build context; only the Dockerfile's build stage sees it
    shutil.copyfile(MACHINE_CA, ca_bundle)
    data = tmp_path / "data"
    data.mkdir()
    https_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("DEPLOYER_", "DATABASE_URL", "CELERY_", "CADDY_", "TRACE_", "REDIS_", "POSTGRES_",
                                "FLOWER_", "COMPOSE_"))},
        "COMPOSE_PROJECT_NAME": f"deployercompose{uuid.uuid4().hex[:8]}",
        "DEPLOYER_IMAGE": "deployer/deployer:compose-test",  # kept: the next run reuses its layers
        "DEPLOYER_IMAGE_CA_BUNDLE": ca_bundle.name,
        "DEPLOYER_HOST_DATA_ROOT": str(data),
        "POSTGRES_PORT": str(free_port()), "REDIS_PORT": str(free_port()),
        "DEPLOYER_QUEUE": f"compose-{uuid.uuid4().hex[:8]}",
        "CADDY_ADMIN_PORT": str(free_port()), "CADDY_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "CADDY_HTTPS_LISTEN": f"127.0.0.1:{https_port}", "DEPLOYER_PUBLIC_PORT": str(https_port),
        "DEPLOYER_WILDCARD_DOMAIN": DOMAIN, "DEPLOYER_PUBLIC_SCHEME": "https",
        "DEPLOYER_PORT_MIN": "16700", "DEPLOYER_PORT_MAX": "16799",
        "DEPLOYER_WEB_PORT": str(free_port()), "TRACE_PORT": str(free_port()), "FLOWER_PORT": str(free_port()),
        "FLOWER_BASIC_AUTH": f"flower:{uuid.uuid4().hex}", "TRACE_DASHBOARD_TOKEN": "compose-trace",
    }  # fmt: skip
    s = Stack(env, https_port, tmp_path / "caddy-root.pem")
    resolve_domain_to_loopback(monkeypatch)
    try:
        yield s
    finally:
        logs = subprocess.run(["docker-compose", *FILES, "logs", "--no-color"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        (tmp_path / "compose.log").write_text(logs.stdout + logs.stderr)
        subprocess.run(["docker-compose", *FILES, "down", "--remove-orphans", "--volumes"], cwd=ROOT, env=env,
                       capture_output=True, timeout=300)  # fmt: skip
        for dep in s.deployments:  # what the worker started, in case the test ended before stopping it
            for c in docker_client.containers.list(all=True, filters={"label": f"deployer.deployment={dep}"}):
                c.remove(force=True)
            for image in docker_client.images.list(name=f"deployer/app-{dep}"):
                docker_client.images.remove(image.id, force=True)
        docker_client.images.prune(filters={"dangling": True, "label": "deployer.stage=build"})  # the build stage
        ca_bundle.unlink(missing_ok=True)


def answers(url: str, verify: Path) -> str | None:
    try:
        resp = requests.get(url, timeout=3, verify=str(verify))
    except requests.RequestException:
        return None
    return resp.text if resp.status_code == 200 else None


def stage_tasks_succeeded(flower: str, auth: tuple[str, str], ca: Path, deployment_id: str) -> set[str]:
    resp = requests.get(f"{flower}/api/tasks", params={"limit": 500}, auth=auth, verify=str(ca), timeout=10)
    resp.raise_for_status()
    return {t["name"] for t in resp.json().values()
            if deployment_id in str(t.get("args")) and t.get("state") == "SUCCESS"}  # fmt: skip


def test_the_offline_compose_stack_serves_a_sample_over_https_and_keeps_it_across_restarts(
    stack: Stack, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = stack
    started = time.monotonic()
    s.compose("build", "postgres", "redis", "caddy", "init", timeout=1500)  # the deployer services share one image
    built = time.monotonic()
    s.compose("up", "-d")
    wait_for(s.healthy, timeout=300, what="every service healthy and init done", interval=1)
    healthy = time.monotonic()

    # Caddy's local CA, from its admin API; the dashboard and API on the dashboard host
    admin = f"http://127.0.0.1:{s.env['CADDY_ADMIN_PORT']}"
    root = wait_for(lambda: requests.get(f"{admin}/pki/ca/local", timeout=5).json().get("root_certificate"),
                    timeout=60, what="Caddy's local CA")  # fmt: skip
    s.ca.write_text(root)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(s.ca))  # requests prefers it to a session's own `verify`
    dashboard = s.url("deployer")
    assert answers(f"{dashboard}/api/health", s.ca) is not None
    made = s.compose("exec", "-T", "web", "deployer", "token", "create", "--name", "compose")
    api = Api(dashboard, made.stdout.strip().splitlines()[-1])
    created = api.upload(zip_folder(SAMPLES / "python-agent"))
    assert created.status_code == 201, created.text
    dep, url = created.json()["id"], created.json()["url"]
    s.deployments.append(dep)
    assert url == s.url(created.json()["slug"])
    row = api.wait_status(dep, "running", "failed", timeout=300)
    assert row["status"] == "running", row
    assert answers(f"{url}/health", s.ca), "the printed URL does not answer"
    deployed = time.monotonic()

    # Flower, behind basic auth at the dashboard host's /flower: the deployment's eight stages
    user, password = s.env["FLOWER_BASIC_AUTH"].split(":", 1)
    assert requests.get(f"{dashboard}/flower/api/tasks", verify=str(s.ca), timeout=10).status_code == 401
    wait_for(lambda: stage_tasks_succeeded(f"{dashboard}/flower", (user, password), s.ca, dep) >= STAGE_TASKS,
             timeout=60, what="the eight stage tasks succeeded in Flower", interval=1)  # fmt: skip

    # Caddy restarted: the sample answers again within one reconcile interval; the watcher never restarts
    s.compose("restart", "caddy")
    restarted = time.monotonic()
    wait_for(lambda: answers(f"{url}/health", s.ca), timeout=RECONCILE_INTERVAL + 10,
             what="the sample after Caddy's restart", interval=0.5)  # fmt: skip
    back_after = time.monotonic() - restarted
    assert s.containers()["watcher"]["RestartCount"] == 0

    # down and up again: the deployment is still listed and running
    s.compose("down")
    s.compose("up", "-d")
    wait_for(s.healthy, timeout=300, what="every service healthy again", interval=1)
    listed = {d["id"]: d for d in api.get("/api/deployments").json()["deployments"]}
    assert listed[dep]["status"] == "running", listed.get(dep)
    assert wait_for(lambda: answers(f"{url}/health", s.ca), timeout=RECONCILE_INTERVAL + 10, what="the sample after up")

    assert api.post(f"/api/deployments/{dep}/stop").status_code == 202
    api.wait_status(dep, "stopped", timeout=120)
    wait_for(lambda: not docker_client.containers.list(all=True, filters={"label": f"deployer.deployment={dep}"}),
             timeout=60, what="the sample's container to be removed")  # fmt: skip
    print(f"build {built - started:.0f} s, healthy {healthy - built:.0f} s, deployed {deployed - healthy:.0f} s, "
          f"back {back_after:.1f} s after Caddy's restart, total {time.monotonic() - started:.0f} s")  # fmt: skip
