"""The boot pipeline on the real Docker engine, Postgres, Redis and Caddy, driven through the API."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deployer.bundles import workdir
from deployer.localkeys import installation_id
from tests.integration.conftest import Stack
from tests.support.stack import wait_for
from tests.support.zips import KEYPAIR, make_zip, zip_folder

SAMPLES = Path(__file__).parents[2] / "samples"

pytestmark = pytest.mark.timeout(600)


def agent_bundle(code: str, name: str = "test agent", *, unique: bool = False) -> bytes:
    """A stdlib agent. The same code gives the same content, so its image layers come from Docker's
    build cache (builds are the slow part of these tests); `unique` forces a real build."""
    head = f"# {uuid.uuid4().hex}\n" if unique else ""
    return make_zip({
        "agent.config.json": json.dumps({"name": name}),
        "agent.py": f"{head}{code}",
    })  # fmt: skip


SERVER = """
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
time.sleep(float(os.environ.get("BOOT_DELAY", "0")))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if self.path == "/health" and not os.environ.get("NO_HEALTH") else 404
        if self.path != "/health":
            status = 200
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
print("booted", flush=True)
HTTPServer(("0.0.0.0", 5000), H).serve_forever()
"""


def test_a_python_agent_runs_is_routed_and_stops_without_leftovers(stack: Stack) -> None:
    api = stack.api
    created = api.upload(zip_folder(SAMPLES / "python-agent"), (SAMPLES / "python-agent/keypair.json").read_bytes(),
                         env=json.dumps({"GREETING": "hi", "ZYND_SERVER_PORT": "9999"}))  # fmt: skip
    assert created.status_code == 201, created.text
    dep, slug = created.json()["id"], created.json()["slug"]
    row = api.wait_status(dep, "running", "failed")
    assert row["status"] == "running", api.lines(dep)
    assert row["started_at"] and row["container_id"] and row["image"].startswith(f"deployer/app-{dep}:")
    # the entity id is back-filled from the agent card just after `running`, best effort
    wait_for(lambda: api.row(dep)["entity_id"] == "echo-agent", timeout=30, what="entity id")

    through_caddy = stack.caddy.get(f"{slug}.apps.test", "/hello")
    assert through_caddy.json() == {"agent": "echo-agent", "path": "/hello"}
    assert f"deployment-{dep}" in stack.routes()
    assert workdir.keypair_file(stack.settings, dep).exists()

    lines = api.lines(dep)
    stages = [ln.removeprefix("status: ").split(" ")[0] for ln in lines if ln.startswith("status: ")]
    assert stages == ["queued", "unpacking", "allocating_port", "writing_config", "building", "starting",
                      "health_checking", "registering_route", "running"]  # fmt: skip

    assert api.post(f"/api/deployments/{dep}/stop").status_code == 202
    api.wait_status(dep, "stopped")
    wait_for(lambda: stack.container(dep) is None and stack.port_rows(dep) == 0, timeout=60, what="teardown")
    assert f"deployment-{dep}" not in stack.routes()
    gone = stack.caddy.get(f"{slug}.apps.test", "/hello")  # no route now: the fallback answers for the domain
    assert gone.status_code == 404 and b"No deployment is running" in gone.content
    assert not workdir.keypair_file(stack.settings, dep).exists()
    assert not workdir.root(stack.settings, dep).exists()


def test_the_container_runs_with_every_limit_and_convention_of_the_design(stack: Stack) -> None:
    api = stack.api
    dep = api.upload(zip_folder(SAMPLES / "python-agent"), KEYPAIR, env=json.dumps({"ZYND_SERVER_PORT": "1"})).json()
    row = api.wait_status(dep["id"], "running", "failed")
    assert row["status"] == "running", api.lines(dep["id"])
    c = stack.container(dep["id"])
    assert c is not None
    attrs, host = c.attrs, c.attrs["HostConfig"]
    assert attrs["Name"] == f"/deployer-{dep['id']}"
    assert c.labels["deployer.deployment"] == dep["id"]
    assert c.labels["deployer.kind"] == "agent" and c.labels["deployer.managed"] == "true"
    assert c.labels["deployer.installation"] == installation_id(stack.settings)
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "20m", "max-file": "3"}}
    assert host["PortBindings"] == {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(row["port"])}]}
    assert host["Memory"] == 256 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": "rw,exec,nosuid,nodev,size=512m"}
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["PidsLimit"] == 512 and host["Privileged"] is False
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/app/keypair.json"]["RW"] is False
    assert not any("docker.sock" in m["Source"] for m in attrs["Mounts"])
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
    assert env["ZYND_SERVER_PORT"] == "5000"  # the deployer's value wins over the user's
    assert env["ZYND_AGENT_KEYPAIR_PATH"] == "/app/keypair.json"
    assert env["ZYND_ENTITY_URL"] == f"http://{dep['slug']}.apps.test"
    assert env["ZYND_WEBHOOK_PORT"] == "5000" and "ZYND_REGISTRY_URL" in env
    config = json.loads(c.exec_run(["cat", "/app/agent.config.json"]).output)
    assert config["server_port"] == 5000 and config["server_host"] == "0.0.0.0"
    assert config["keypair_path"] == "/app/keypair.json" and config["name"] == "Echo Agent"
    assert json.loads(c.exec_run(["cat", "/app/keypair.json"]).output) == json.loads(KEYPAIR)
    assert c.exec_run(["touch", "/app/x"]).exit_code != 0  # read-only root
    assert c.exec_run(["touch", "/tmp/x"]).exit_code == 0
    api.post(f"/api/deployments/{dep['id']}/stop")


def test_a_node_agent_goes_to_running(stack: Stack) -> None:
    api = stack.api
    dep = api.upload(zip_folder(SAMPLES / "node-agent"), KEYPAIR).json()
    row = api.wait_status(dep["id"], "running", "failed")
    assert row["status"] == "running", api.lines(dep["id"])
    assert stack.caddy.get(f"{dep['slug']}.apps.test", "/x").json() == {"agent": "node-echo-agent", "path": "/x"}
    api.post(f"/api/deployments/{dep['id']}/stop")


def assert_nothing_left(stack: Stack, dep: str) -> None:
    """Teardown runs its steps after the status is committed: wait for every one of them."""
    wait_for(lambda: stack.container(dep) is None, timeout=60, what="container removal")
    wait_for(lambda: stack.port_rows(dep) == 0, timeout=30, what="port release")
    wait_for(lambda: f"deployment-{dep}" not in stack.routes(), timeout=30, what="route removal")
    wait_for(lambda: not workdir.root(stack.settings, dep).exists(), timeout=30, what="workdir removal")


def test_an_agent_that_exits_at_boot_fails_with_its_exit_code_and_output(stack: Stack) -> None:
    api = stack.api
    dep = api.upload(agent_bundle("import sys\nprint('cannot find my model', flush=True)\nsys.exit(3)\n")).json()["id"]
    row = api.wait_status(dep, "failed", "running")
    assert row["status"] == "failed"
    assert row["error_message"].startswith("Container exited 3 during boot")
    assert "cannot find my model" in row["error_message"]
    assert row["last_exit_code"] == 3
    assert_nothing_left(stack, dep)


def test_an_agent_without_health_fails_after_the_boot_timeout(stack: Stack) -> None:
    api = stack.api
    dep = api.upload(agent_bundle(SERVER), env=json.dumps({"NO_HEALTH": "1"})).json()["id"]
    row = api.wait_status(dep, "failed", "running")
    assert row["error_message"].startswith("Container did not become healthy within 10000 ms")
    assert "GET /health HTTP/1.1\" 404" in row["error_message"]  # the last output shows why
    assert_nothing_left(stack, dep)


def test_a_restart_reuses_the_built_image(stack: Stack) -> None:
    api = stack.api
    dep = api.upload(agent_bundle(SERVER)).json()["id"]
    first = api.wait_status(dep, "running", "failed")
    api.post(f"/api/deployments/{dep}/stop")
    api.wait_status(dep, "stopped")
    # 409 busy until the stop's teardown has finished, then accepted
    wait_for(lambda: api.post(f"/api/deployments/{dep}/restart").status_code == 202, timeout=60, what="restart")
    again = api.wait_status(dep, "running", "failed")
    assert again["status"] == "running", "\n".join(api.lines(dep))
    assert again["image"] == first["image"] and again["restart_count"] == 1
    assert any(ln.endswith("is up to date; not rebuilt") for ln in api.lines(dep))
    assert api.post(f"/api/deployments/{dep}/restart").status_code == 409  # running: nothing to restart
    api.post(f"/api/deployments/{dep}/stop")


def test_ten_deployments_submitted_at_once_all_run_on_distinct_ports(stack: Stack) -> None:
    api = stack.api
    bundle = agent_bundle(SERVER)  # one content: the image layers are shared through the build cache
    with ThreadPoolExecutor(max_workers=10) as pool:
        created = list(pool.map(lambda i: api.upload(bundle, name=f"crowd {i}").json(), range(10)))
    rows = [api.wait_status(c["id"], "running", "failed", timeout=400) for c in created]
    assert [r["status"] for r in rows] == ["running"] * 10, [r["error_message"] for r in rows]
    assert len({r["port"] for r in rows}) == 10
    for c in created:
        api.post(f"/api/deployments/{c['id']}/stop")
    for c in created:
        api.wait_status(c["id"], "stopped")


@pytest.mark.parametrize("stage", ["building", "health_checking"])
def test_a_worker_killed_mid_stage_is_replaced_and_the_deployment_still_settles(stack: Stack, stage: str) -> None:
    api = stack.api
    env = {"BOOT_DELAY": "6"} if stage == "health_checking" else {}
    dep = api.upload(agent_bundle(SERVER, unique=True), env=json.dumps(env)).json()["id"]  # a real build
    wait_for(lambda: api.row(dep)["status"] == stage, timeout=120, what=stage, interval=0.02)
    stack.worker.kill()  # SIGKILL the worker and its pool mid-stage
    stack.restart_worker()
    row = api.wait_status(dep, "running", "failed", timeout=300)
    assert row["status"] == "running", "\n".join(api.lines(dep))
    assert api.lines(dep).count(f"status: {stage}") == 1  # resumed in place, not re-entered
    api.post(f"/api/deployments/{dep}/stop")
