"""`deployer up` on embedded defaults (SQLite, the server-less broker), as a single-host operator runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.stack import free_port, wait_for

SAMPLES = Path(__file__).parents[2] / "samples"
DEPLOYER = str(Path(sys.executable).with_name("deployer"))

pytestmark = pytest.mark.timeout(600)


def test_up_runs_everything_deploys_a_sample_through_caddy_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, base_images: None
) -> None:
    port, caddy_admin, caddy_http = free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYER_", "DATABASE_URL", "CELERY_", "CADDY_"))},
        "DEPLOYER_DATA_ROOT": str(tmp_path / "data"),
        "CADDY_ADMIN_URL": f"http://127.0.0.1:{caddy_admin}",
        "CADDY_HTTP_LISTEN": f"127.0.0.1:{caddy_http}",
        "DEPLOYER_WILDCARD_DOMAIN": "apps.test",
        "DEPLOYER_PUBLIC_SCHEME": "http",
        "DEPLOYER_PORT_MIN": "16000",
        "DEPLOYER_PORT_MAX": "16099",
        "DEPLOYER_WORKER_CONCURRENCY": "2",
        "DEPLOYER_URL": f"http://127.0.0.1:{port}",
    }
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([DEPLOYER, "up", "--port", str(port)], env=env, stdout=out, stderr=out,
                              start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: b"deployer is up" in log.read_bytes() or up.poll() is not None, timeout=300, what="up")
        assert up.poll() is None, log.read_text()
        wait_for(lambda: _healthy(env["DEPLOYER_URL"]), timeout=60, what="web")
        token = subprocess.run([DEPLOYER, "token", "create", "--name", "up"], env=env, capture_output=True, text=True,
                               check=True).stdout.strip().splitlines()[-1]  # fmt: skip
        env["DEPLOYER_TOKEN"] = token
        deployed = subprocess.run([DEPLOYER, "deploy", str(SAMPLES / "python-agent"), "--follow"], env=env,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr + log.read_text()[-3000:]
        out = deployed.stdout
        for stage in ("unpacking", "building", "health_checking", "registering_route", "running"):
            assert f"status: {stage}" in out
        slug = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("slug:"))
        assert out.strip().splitlines()[-1] == f"running: http://{slug}.apps.test"
        routed = requests.get(f"http://127.0.0.1:{caddy_http}/x", headers={"Host": f"{slug}.apps.test"}, timeout=5)
        assert routed.json() == {"agent": "echo-agent", "path": "/x"}
        dep_id = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("id:"))
        subprocess.run([DEPLOYER, "stop", dep_id], env=env, check=True, capture_output=True)
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)  # what Ctrl-C delivers; `up` stops its children itself
        code = up.wait(timeout=90)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "all stopped" in text
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True).stdout
    assert leftover.strip() == ""


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/health", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False
