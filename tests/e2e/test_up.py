"""`deployer up` on embedded defaults (SQLite, the server-less broker), as a single-host operator runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.upstack import DEPLOYER, running_up

SAMPLES = Path(__file__).parents[2] / "samples"

pytestmark = pytest.mark.timeout(600)


def test_up_runs_everything_deploys_a_sample_through_caddy_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, base_images: None
) -> None:
    with running_up(tmp_path) as up:
        env = {**up.env, "DEPLOYER_TOKEN": up.token()}
        deployed = subprocess.run([DEPLOYER, "deploy", str(SAMPLES / "python-agent"), "--follow"], env=env,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr + up.log.read_text()[-3000:]
        out = deployed.stdout
        for stage in ("unpacking", "building", "health_checking", "registering_route", "running"):
            assert f"status: {stage}" in out
        slug = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("slug:"))
        assert out.strip().splitlines()[-1] == f"running: http://{slug}.apps.test"
        routed = requests.get(f"http://127.0.0.1:{up.caddy_http}/x", headers={"Host": f"{slug}.apps.test"}, timeout=5)
        assert routed.json() == {"agent": "echo-agent", "path": "/x"}
        dep_id = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("id:"))
        subprocess.run([DEPLOYER, "stop", dep_id], env=env, check=True, capture_output=True)
    text = up.log.read_text()
    assert up.exit_code == 0, text[-3000:]
    assert "all stopped" in text
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True).stdout
    assert leftover.strip() == ""
