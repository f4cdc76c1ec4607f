"""One tenant's bundle against the host and the other tenants: what it prints, what it reaches, who
it runs as. Each test tries the attack on real Docker through a whole deployer."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select

from deployer.store.models import DeploymentLog
from tests.integration.conftest import Stack
from tests.integration.test_lifecycle import agent_bundle
from tests.support.stack import wait_for

pytestmark = pytest.mark.timeout(600)
_log = DeploymentLog.__table__  # type: ignore[attr-defined]

SERVE = """
import os, socket, sys, threading, time, json
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(PROBE()).encode() if self.path == "/probe" else b"ok"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
def reach(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__
def PROBE():
    return {"uid": os.getuid(), "gid": os.getgid(),
            "targets": {t: reach(*t.rsplit(":", 1)) for t in os.environ.get("TARGETS", "").split(",") if t}}
threading.Thread(target=HTTPServer(("0.0.0.0", 5000), H).serve_forever, daemon=True).start()
"""


def running(stack: Stack, code: str, name: str, **env: str) -> dict[str, object]:
    dep = stack.api.upload(agent_bundle(code, name), env=json.dumps(env)).json()["id"]
    row = stack.api.wait_status(dep, "running", "failed", timeout=300)
    assert row["status"] == "running", "\n".join(stack.api.lines(dep)[-40:])
    return row


def _longest_line(stack: Stack, deployment_id: str) -> int:
    with stack.engine.connect() as conn:
        return int(conn.execute(select(func.max(func.length(_log.c.text))).where(_log.c.deployment_id == deployment_id))
                   .scalar() or 0)  # fmt: skip


def _ts(value: object) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def test_a_bundle_printing_64_mib_without_a_newline_does_not_slow_crash_detection_for_others(stack: Stack) -> None:
    flood = SERVE + "for _ in range(64):\n    sys.stdout.write('x' * (1024 * 1024))\nsys.stdout.flush()\n"
    noisy = running(stack, flood + "time.sleep(600)\n", "no newline")
    victim = running(stack, SERVE + "time.sleep(600)\n", "bystander")
    # the flood is being tailed: its first cut lines are stored
    wait_for(lambda: _longest_line(stack, str(noisy["id"])) >= 60000, timeout=120,
             what="the first cut of the endless line", interval=0.5)  # fmt: skip
    container = stack.container(str(victim["id"]))
    assert container is not None
    killed_at = time.time()
    container.kill()
    row = stack.api.wait_status(str(victim["id"]), "crashed", timeout=30)
    assert row["last_exit_code"] == 137
    assert _ts(row["last_crash_at"]) - killed_at < 1.0
    for dep in (noisy, victim):
        stack.api.post(f"/api/deployments/{dep['id']}/stop")


def test_the_app_runs_as_a_non_root_user_and_cannot_reach_another_deployment(stack: Stack) -> None:
    other = running(stack, SERVE + "time.sleep(600)\n", "neighbour")
    other_ip = _container_ip(stack, str(other["id"]))
    prober = running(stack, SERVE + "time.sleep(600)\n", "prober", TARGETS=f"{other_ip}:5000")
    seen = stack.caddy.get(f"{prober['slug']}.{stack.settings.wildcard_domain}", "/probe").json()
    assert seen["uid"] != 0 and seen["gid"] != 0
    assert seen["targets"][f"{other_ip}:5000"] != "connected"  # same bridge, but inter-container traffic is off
    # …while the neighbour still answers on its own published port
    assert stack.caddy.get(f"{other['slug']}.{stack.settings.wildcard_domain}", "/").status_code == 200
    for dep in (other, prober):
        stack.api.post(f"/api/deployments/{dep['id']}/stop")


def _networks(stack: Stack, deployment_id: str) -> dict[str, dict[str, str]]:
    container = stack.container(deployment_id)
    assert container is not None
    nets: dict[str, dict[str, str]] = container.attrs["NetworkSettings"]["Networks"]
    assert len(nets) == 1 and next(iter(nets)).startswith("deployer-net-"), nets
    return nets


def _container_ip(stack: Stack, deployment_id: str) -> str:
    return str(next(iter(_networks(stack, deployment_id).values()))["IPAddress"])
