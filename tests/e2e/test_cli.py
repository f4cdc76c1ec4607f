"""The CLI against `deployer serve` (gunicorn, threaded workers) on PostgreSQL, as a user runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

SAMPLES = Path(__file__).parents[2] / "samples"
DEPLOYER = str(Path(sys.executable).with_name("deployer"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, pg_url: str, pg_engine: object, redis_url: str) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        "DEPLOYER_DATA_ROOT": str(tmp_path / "data"),
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "DEPLOYER_URL": f"http://127.0.0.1:{port}",
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
    }


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DEPLOYER, *args], env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, deadline_s: float = 60) -> None:
    """Polls /api/health until it answers 200 (or the server dies); refused connections are expected."""
    session = requests.Session()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert proc.poll() is None, log.read_text()
        try:
            if session.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"server not healthy within {deadline_s}s:\n{log.read_text()}")


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = env["DEPLOYER_URL"].rsplit(":", 1)[1]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([DEPLOYER, "serve", "--port", port, "--threads", "8"], env=env, stdout=out, stderr=out)
    try:
        wait_healthy(env["DEPLOYER_URL"], proc, log)
        yield env["DEPLOYER_URL"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_user_deploys_lists_inspects_and_stops_a_sample_from_the_cli(env: dict[str, str], server: str) -> None:
    health = requests.get(f"{server}/api/health", timeout=5).json()
    assert health == {"status": "ok", "db": "ok", "redis": "ok"}

    no_token = cli(env, "ls", ok=False)
    assert no_token.returncode != 0 and "DEPLOYER_TOKEN is not set" in no_token.stderr

    created = cli(env, "token", "create", "--name", "e2e")
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("dpl_") and token not in created.stderr
    env = {**env, "DEPLOYER_TOKEN": token}
    assert "e2e" in cli(env, "token", "list").stdout

    deployed = cli(env, "deploy", str(SAMPLES / "python-agent"), "--env", "GREETING=hi")
    fields = dict(line.split(":", 1) for line in deployed.stdout.strip().splitlines())
    dep_id, slug = fields["id"].strip(), fields["slug"].strip()
    assert fields["status"].strip() == "queued" and slug.startswith("echo-agent-")
    assert fields["page"].strip() == f"{server}/d/{dep_id}"
    assert "uploading" in deployed.stderr

    path_scoped = {k: v for k, v in env.items() if k != "DEPLOYER_TOKEN"} | {"DEPLOYER_URL": f"{server}/t/{token}"}
    assert dep_id in cli(path_scoped, "ls").stdout  # the token as a path prefix, no header

    listed = cli(env, "ls").stdout
    assert dep_id in listed and "queued" in listed

    status = cli(env, "status", dep_id).stdout
    assert f"slug:            {slug}" in status and "GREETING" in status
    assert cli(env, "status", slug).stdout == status  # the slug names it too
    assert cli(env, "status", dep_id[:8]).stdout == status  # and a unique id prefix, as docker does

    logged = cli(env, "logs", "-t", slug).stdout.splitlines()
    assert logged and all(line[:4].isdigit() and line[10] == " " for line in logged)  # `2026-12-01 12:00:00.123`
    assert "status: queued" in logged[0]

    assert cli(env, "stop", dep_id[:8]).stdout.strip() == f"{dep_id}: stopped"
    assert cli(env, "stop", dep_id).stdout.strip() == f"{dep_id}: stopped"

    bad = cli(env, "status", "no-such-id", ok=False)
    assert bad.returncode == 1 and "No deployment matches 'no-such-id'" in bad.stderr

    nowhere = cli({**env, "DEPLOYER_URL": f"http://127.0.0.1:{free_port()}"}, "ls", ok=False)
    assert nowhere.returncode == 1 and "(DEPLOYER_URL)" in nowhere.stderr

    cli(env, "token", "revoke", "e2e")
    refused = cli(env, "ls", ok=False)
    assert "Invalid or revoked API token" in refused.stderr


def test_a_hostile_folder_is_refused_by_the_server_with_its_reason(
    env: dict[str, str], server: str, tmp_path: Path
) -> None:
    token = cli(env, "token", "create", "--name", "e2e2").stdout.strip().splitlines()[-1]
    project = tmp_path / "proj"
    project.mkdir()
    (project / "agent.config.json").write_text('{"name": "sneaky"}')
    (project / "agent.py").write_text("")
    (project / "developer.json").write_text("{}")
    result = cli({**env, "DEPLOYER_TOKEN": token}, "deploy", str(project), ok=False)
    assert result.returncode == 1
    assert "developer.json: developer credentials must not be uploaded" in result.stderr
