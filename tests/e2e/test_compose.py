"""The compose file and the deployer's own image, for real: the image is built from the Dockerfile
(offline here: the bootstrapped Debian trixie base, its build stage installing from the package index
through the machine's TLS-intercepting proxy with the machine's CA bundle), `init` prepares the
database, and the deployer's services run from it under docker-compose and deploy a sample through
Caddy. PostgreSQL, Redis and Caddy are this machine's (their images cannot be pulled here): the
deployer services are started with --no-deps and pointed at them by the same variables an operator
sets."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import make_url

from deployer.settings import load_settings
from tests.integration.conftest import MACHINE_CA
from tests.stack import Api, Caddy, free_port, wait_for
from tests.zips import zip_folder

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "samples"
SERVICES = ["web", "worker", "watcher", "schedules", "flower", "trace"]


def compose(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker-compose", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def image_base(docker_client: Any) -> str:
    """The public Python image where it was pulled, else the base bootstrapped from Debian."""
    import docker

    for tag in ("python:3.12-slim", load_settings({}).bootstrap_image):
        try:
            docker_client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            continue
    raise AssertionError("no Python base image: the base_images fixture should have made one")


@pytest.fixture
def compose_env(tmp_path: Path, new_pg_database: Any, redis_url: str, docker_client: Any,
                base_images: None) -> Iterator[dict[str, str]]:  # fmt: skip
    ca = ROOT / ".build-ca.pem"  # inside the build context; only the Dockerfile's build stage sees it
    shutil.copyfile(MACHINE_CA, ca)
    db = make_url(new_pg_database())
    caddy = Caddy(tmp_path / "caddy")
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("DEPLOYER_", "DATABASE_URL", "CELERY_", "CADDY_", "TRACE_", "REDIS_", "POSTGRES_"))},
        "COMPOSE_PROJECT_NAME": f"deployertest{uuid.uuid4().hex[:8]}",
        "DEPLOYER_IMAGE": "deployer/deployer:test", "DEPLOYER_IMAGE_BASE": image_base(docker_client),
        "DEPLOYER_IMAGE_CA_BUNDLE": ca.name,
        "DEPLOYER_SECRET_KEY": uuid.uuid4().hex, "DEPLOYER_DATA_ROOT": str(data),
        "POSTGRES_USER": str(db.username), "POSTGRES_PASSWORD": str(db.password), "POSTGRES_PORT": str(db.port),
        "POSTGRES_DB": str(db.database),
        "REDIS_PORT": str(make_url(redis_url).port), "DEPLOYER_QUEUE": f"compose-{uuid.uuid4().hex[:8]}",
        "CADDY_ADMIN_PORT": str(caddy.admin_port), "CADDY_HTTP_LISTEN": f"127.0.0.1:{caddy.http_port}",
        "DEPLOYER_WILDCARD_DOMAIN": "compose.test", "DEPLOYER_PUBLIC_SCHEME": "http",
        "DEPLOYER_PORT_MIN": "16500", "DEPLOYER_PORT_MAX": "16599",
        "DEPLOYER_WEB_PORT": str(free_port()), "TRACE_PORT": str(free_port()), "FLOWER_PORT": str(free_port()),
        "TRACE_DASHBOARD_TOKEN": "compose-trace",
    }  # fmt: skip
    env["_CADDY_HTTP"] = str(caddy.http_port)
    try:
        yield env
    finally:
        logs = subprocess.run(["docker-compose", "logs", "--no-color", *SERVICES], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        (tmp_path / "compose.log").write_text(logs.stdout + logs.stderr)
        subprocess.run(["docker-compose", "down", "--remove-orphans", "--volumes", "--rmi", "all"], cwd=ROOT,
                       env=env, capture_output=True, timeout=300)  # fmt: skip
        docker_client.images.prune(filters={"dangling": True, "label": "deployer.stage=build"})  # the build stage
        ca.unlink(missing_ok=True)
        caddy.close()


def answers(url: str, **kw: Any) -> bool:
    try:
        return requests.get(url, timeout=2, **kw).status_code == 200
    except requests.RequestException:
        return False


def test_the_compose_services_built_from_the_dockerfile_deploy_a_sample_through_caddy(
    compose_env: dict[str, str], docker_client: Any
) -> None:
    env = compose_env
    compose(env, "build", "init", timeout=1500)  # every deployer service shares this one image
    init = compose(env, "run", "--rm", "--no-deps", "init")
    assert "migrations applied, master key ready" in init.stderr and "base images present" in init.stderr
    compose(env, "up", "-d", "--no-deps", "--no-build", *SERVICES)
    web = f"http://127.0.0.1:{env['DEPLOYER_WEB_PORT']}"
    wait_for(lambda: answers(f"{web}/api/health"), timeout=120, what="the web service")
    made = compose(env, "exec", "-T", "web", "deployer", "token", "create", "--name", "compose")
    api = Api(web, made.stdout.strip().splitlines()[-1])
    created = api.upload(zip_folder(SAMPLES / "python-agent"))
    assert created.status_code == 201, created.text
    row = api.wait_status(created.json()["id"], "running", "failed", timeout=300)
    assert row["status"] == "running", row
    slug = created.json()["slug"]
    proxied = requests.get(f"http://127.0.0.1:{env['_CADDY_HTTP']}/health", headers={"Host": f"{slug}.compose.test"},
                           timeout=5)  # fmt: skip
    assert proxied.status_code == 200 and proxied.text, proxied.text
    assert answers(f"http://127.0.0.1:{env['TRACE_PORT']}/trace/login")
    wait_for(lambda: answers(f"http://127.0.0.1:{env['FLOWER_PORT']}/healthcheck"), timeout=60, what="flower")
    beat = compose(env, "logs", "--no-color", "schedules").stdout
    assert "leader" in beat.lower(), beat[-2000:]
    assert api.post(f"/api/deployments/{row['id']}/stop").status_code == 202
    stopped = api.wait_status(row["id"], "stopped", timeout=120)
    wait_for(lambda: not docker_client.containers.list(all=True, filters={"label": f"deployer.deployment={row['id']}"}),
             timeout=60, what="the sample's container to be removed")  # fmt: skip
    assert stopped["status"] == "stopped"
