"""The runtime bases and app builds on the real Docker engine: TypeScript compiled at build time, pnpm
where the node bases have it, the Zynd SDK in the Python bases, and installs behind the machine's
TLS-intercepting proxy that leave neither the CA nor credentials in the image or the logs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from deployer.lifecycle.images import NODE_TOOLS
from tests.integration.conftest import Stack
from tests.support.stack import wait_for
from tests.support.zips import make_zip, zip_folder

SAMPLES = Path(__file__).parents[2] / "samples"
DEAD_REGISTRY = "http://127.0.0.1:9/"  # discard port on loopback: nothing answers
SECRET_INDEX = "https://deployer:s3cret-token@pypi.org/simple"  # PyPI ignores the credentials

pytestmark = pytest.mark.timeout(600)


def run_in(stack: Stack, image: str, *command: str) -> str:
    out: bytes = stack.docker.containers.run(image, list(command), remove=True, network_disabled=True)
    return out.decode()


def restart(stack: Stack, dep: str) -> dict[str, Any]:
    stack.api.post(f"/api/deployments/{dep}/stop")
    stack.api.wait_status(dep, "stopped")
    wait_for(lambda: stack.api.post(f"/api/deployments/{dep}/restart").status_code == 202, timeout=60,
             what="restart accepted")  # fmt: skip
    return stack.api.wait_status(dep, "running", "failed")


def test_a_typescript_agent_compiled_at_build_time_restarts_with_no_npm_registry_reachable(stack: Stack) -> None:
    api = stack.api
    # the container itself is pointed at a dead registry too: nothing may be fetched when it starts
    created = api.upload(zip_folder(SAMPLES / "node-ts-agent"), env=json.dumps({"npm_config_registry": DEAD_REGISTRY}))
    assert created.status_code == 201, created.text
    dep, slug = created.json()["id"], created.json()["slug"]
    assert created.json()["runtime"] == "node"  # "language": "ts" in the config
    row = api.wait_status(dep, "running", "failed")
    assert row["status"] == "running", "\n".join(api.lines(dep))
    reply = {"agent": "ts-echo-agent", "path": "/x", "typescript": True}  # from the bundled local module
    assert stack.caddy.get(f"{slug}.apps.test", "/x").json() == reply
    container = stack.container(dep)
    assert container is not None
    assert container.attrs["Config"]["Cmd"] == ["node", "--enable-source-maps", "/app/agent.compiled.cjs"]

    with stack.worker_with(npm_registry=DEAD_REGISTRY):
        again = restart(stack, dep)
        assert again["status"] == "running", "\n".join(api.lines(dep))
    assert again["image"] == row["image"]
    assert any(line.endswith("is up to date; not rebuilt") for line in api.lines(dep))
    assert stack.caddy.get(f"{slug}.apps.test", "/x").json() == reply
    api.post(f"/api/deployments/{dep}/stop")


def test_a_pnpm_agent_runs_where_the_node_base_has_pnpm_and_otherwise_fails_at_building_naming_the_cause(
    stack: Stack,
) -> None:
    tools = dict(line.split(" ", 1) for line in run_in(stack, stack.settings.node_agent_base_image, "cat",
                                                       NODE_TOOLS).splitlines())  # fmt: skip
    api = stack.api
    dep = api.upload(zip_folder(SAMPLES / "node-pnpm-agent")).json()["id"]
    row = api.wait_status(dep, "running", "failed")
    lines = api.lines(dep)
    if "pnpm" in tools:  # a registry answered when the node bases were built
        assert row["status"] == "running", "\n".join(lines)
        api.post(f"/api/deployments/{dep}/stop")
        return
    # This machine: no npm registry, so corepack could not prepare pnpm when the bases were built.
    assert row["status"] == "failed"
    assert row["error_message"].startswith(
        "pnpm is not available: the node base image was built where no npm registry answered"
    ), row["error_message"]
    assert "DEPLOYER_NPM_REGISTRY" in row["error_message"]
    assert "status: building" in lines and not any("pnpm: not found" in line for line in lines)


def test_a_python_agent_importing_the_zynd_sdk_runs_without_a_requirements_file(stack: Stack) -> None:
    s = stack.settings
    for tag in (s.agent_base_image, s.service_base_image):
        assert stack.docker.images.get(tag).labels["deployer.zynd-sdk-version"] == s.zynd_sdk_version
    assert run_in(stack, s.service_base_image, "python", "-c", "import zyndai_agent; print('ok')").strip() == "ok"
    api = stack.api
    dep = api.upload(zip_folder(SAMPLES / "python-zynd-agent")).json()["id"]
    row = api.wait_status(dep, "running", "failed")
    assert row["status"] == "running", "\n".join(api.lines(dep))
    health = stack.caddy.get(f"{row['slug']}.apps.test", "/health").json()
    assert health == {"status": "ok", "zyndai_agent": s.zynd_sdk_version}
    api.post(f"/api/deployments/{dep}/stop")


AGENT_WITH_REQUIREMENTS = """
import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
import humanize  # from requirements.txt
import zyndai_agent  # from the base
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"size": humanize.naturalsize(3000)}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
HTTPServer(("0.0.0.0", 5000), H).serve_forever()
"""


def test_requirements_install_through_the_proxy_and_neither_the_ca_nor_credentials_reach_the_image_or_logs(
    stack: Stack,
) -> None:
    bundle = make_zip({"agent.config.json": json.dumps({"name": "reqs", "language": "python"}),
                       "agent.py": AGENT_WITH_REQUIREMENTS, "requirements.txt": "humanize==4.17.0\n"})  # fmt: skip
    api = stack.api
    with stack.worker_with(pip_index_url=SECRET_INDEX):
        dep = api.upload(bundle).json()["id"]
        row = api.wait_status(dep, "running", "failed", timeout=400)
    lines = api.lines(dep)
    assert row["status"] == "running", "\n".join(lines)
    assert stack.caddy.get(f"{row['slug']}.apps.test", "/").json() == {"size": "3.0 kB"}
    assert any("humanize" in line for line in lines)  # the install's output is in the log…
    assert not any("s3cret-token" in line for line in lines)  # …never the index's credentials
    image = stack.docker.images.get(row["image"])
    history = json.dumps(image.history()) + json.dumps(image.attrs)
    assert "s3cret-token" not in history and "deployer-build" not in history
    container = stack.container(dep)
    assert container is not None
    assert container.exec_run(["test", "-e", "/deployer-build"]).exit_code != 0
    if stack.settings.build_ca_bundle:  # no file in the image is the CA bundle the build was given
        ca = Path(stack.settings.build_ca_bundle)
        same_size = f"find / -xdev -type f -size {ca.stat().st_size}c -exec sha256sum {{}} +"
        found = container.exec_run(["sh", "-c", same_size])
        assert hashlib.sha256(ca.read_bytes()).hexdigest() not in found.output.decode()
    api.post(f"/api/deployments/{dep}/stop")
