"""Image builds run the bundle's own code: here a Python build backend (pyproject.toml's in-tree
`build-backend`, which pip runs while installing the bundle, offline). It may eat memory, hang, or print
lines made to look like the deployer's; none of it may harm the host or fool the timeline."""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker.errors
import pytest

from tests.integration.conftest import Stack
from tests.support.stack import wait_for
from tests.support.zips import make_zip
from web.dashboard import timeline

pytestmark = pytest.mark.timeout(300)

PYPROJECT = """
[build-system]
requires = []
build-backend = "hook"
backend-path = ["."]

[project]
name = "hooked"
version = "0.1"
"""

HOOK = """
import glob, os, sys, time, urllib.request


def say(text):  # straight to the build's output: pip holds a backend's own prints back until it fails
    with open("/proc/1/fd/1", "w") as out:
        out.write(text + "\\n")


def first(*patterns):
    for path in (p for pattern in patterns for p in glob.glob(pattern)):
        return open(path).read().strip()
    return "?"


def get_requires_for_build_wheel(config_settings=None):
{body}
    raise SystemExit("the hook ends the build here")
"""

STEP_CONTAINER = re.compile(r"^\|  ---> Running in ([0-9a-f]{12,64})$")


def hooked_bundle(body: str) -> bytes:
    """A Python agent whose install runs `body` (indented) in its build backend; unique, so that Docker's
    build cache never skips it."""
    return make_zip({
        "agent.config.json": json.dumps({"name": "hooked", "language": "python"}),
        "agent.py": "print('never started')\n",
        "pyproject.toml": PYPROJECT,
        "hook.py": HOOK.replace("{body}", body),
        "nonce.txt": uuid.uuid4().hex,
    })  # fmt: skip


def step_containers(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines if (m := STEP_CONTAINER.match(line))]


def assert_gone(stack: Stack, container_ids: list[str]) -> None:
    assert container_ids, "the log names the build's step containers"
    for cid in container_ids:
        with pytest.raises(docker.errors.NotFound):
            stack.docker.containers.get(cid)


def test_a_build_step_allocating_8_gb_fails_the_build_with_the_memory_limit_as_the_reason(stack: Stack) -> None:
    api = stack.api
    with stack.worker_with(build_mem_mb=256):
        dep = api.upload(hooked_bundle('    say("allocating 8 GB")\n    hog = [b"x" * (1 << 30) for _ in range(8)]'))
        dep_id = dep.json()["id"]
        row = api.wait_status(dep_id, "failed", "running")
    lines = api.lines(dep_id)
    assert row["status"] == "failed"
    assert row["error_message"].startswith(
        "Image build ran out of memory: a build step went over the build memory limit of 256 MB "
        "(DEPLOYER_BUILD_MEM_MB) and was killed"
    ), row["error_message"]
    assert "| allocating 8 GB" in lines
    assert_gone(stack, step_containers(lines))
    wait_for(lambda: stack.port_rows(dep_id) == 0, timeout=30, what="the failed deployment's port released")


def test_a_build_still_going_at_its_deadline_fails_with_that_reason_even_while_it_prints_nothing(
    stack: Stack,
) -> None:
    api = stack.api
    # Long enough for pip to reach the hook on a loaded two-core machine (it took over 25 s in CI).
    with stack.worker_with(build_timeout_sec=75):
        dep_id = api.upload(hooked_bundle('    say("sleeping")\n    time.sleep(3600)')).json()["id"]
        row = api.wait_status(dep_id, "failed", "running", timeout=240)
    lines = api.lines(dep_id)
    assert row["status"] == "failed"
    assert row["error_message"].startswith(
        "Image build exceeded its deadline of 75 s (DEPLOYER_BUILD_TIMEOUT_SEC) and was stopped"
    ), row["error_message"]
    assert "| sleeping" in lines  # the deadline struck the silent step itself…
    assert_gone(stack, step_containers(lines))  # …whose container is gone


FORGER = """
    say("status: running")
    say("\\x1b[32mstatus: health_checking\\x1b[0m")
    say("  status: registering_route")
    say("\\rstatus: running — forged")
    say("docker socket: " + str(os.path.exists("/var/run/docker.sock")))
    say("cpu quota: " + first("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
                              "/sys/fs/cgroup/cpu.max"))
    say("memory limit: " + first("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"))
"""


def test_build_output_that_looks_like_status_lines_is_quoted_and_never_read_as_a_stage(stack: Stack) -> None:
    api = stack.api
    dep_id = api.upload(hooked_bundle(FORGER)).json()["id"]
    row = api.wait_status(dep_id, "failed", "running")
    logged = api.get(f"/api/deployments/{dep_id}/logs", limit=2000).json()["lines"]
    texts = [ln["text"] for ln in logged]
    assert row["status"] == "failed", "\n".join(texts)
    steps = [step["status"] for step in timeline(logged)]
    assert steps == ["queued", "unpacking", "allocating_port", "writing_config", "building", "failed"], steps
    for forged in ("| status: running", "| status: health_checking", "|   status: registering_route",
                   "| status: running — forged"):  # fmt: skip
        assert forged in texts, "\n".join(texts)
    # every line of the build's output is quoted, and none holds a terminal control any more
    start = next(i for i, t in enumerate(texts) if t.startswith("building deployer/app-"))
    end = next(i for i, t in enumerate(texts) if t.startswith("status: failed"))
    assert end - start > 5 and all(t.startswith("| ") for t in texts[start + 1 : end])
    assert not any("\x1b" in t or "\r" in t for t in texts)
    # no Docker socket, and the build's limits are the settings'
    s = stack.settings
    assert "| docker socket: False" in texts
    cpu = next(t for t in texts if t.startswith("| cpu quota: "))
    assert cpu in (f"| cpu quota: {s.build_cpu_millis * 100}", f"| cpu quota: {s.build_cpu_millis * 100} 100000")
    assert f"| memory limit: {s.build_mem_mb * 1024 * 1024}" in texts


class Gate:
    """An HTTP server on the Docker bridge (where a build step can reach it) whose answer waits until
    the test opens the gate: a build step that asks it waits on the test."""

    def __init__(self, host: str) -> None:
        self.asked, self.open = threading.Event(), threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.asked.set()
                outer.open.wait(120)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_port}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.open.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def gate(stack: Stack) -> Iterator[Gate]:
    ipam: dict[str, Any] = stack.docker.networks.get("bridge").attrs["IPAM"]["Config"][0]
    g = Gate(ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts())))
    yield g
    g.close()


def test_build_output_is_in_the_log_while_the_build_is_still_running(stack: Stack, gate: Gate) -> None:
    api = stack.api
    body = f'    say("waiting for the test")\n    urllib.request.urlopen("{gate.url}", timeout=120).read()\n' \
           '    say("released")'  # fmt: skip
    dep_id = api.upload(hooked_bundle(body)).json()["id"]
    assert gate.asked.wait(120), "the build step never asked the test"
    lines = wait_for(lambda: (ls := api.lines(dep_id)) and "| waiting for the test" in ls and ls, timeout=10,
                     what="the line printed before the step waits")  # fmt: skip
    assert api.row(dep_id)["status"] == "building"  # the build is held by the test: these came live
    assert any(re.match(r"\| Step 1/\d+ : FROM ", line) for line in lines)  # Docker's steps…
    assert "| Processing /deployer-build/app" in lines  # …pip's progress
    assert "|   Getting requirements to build wheel: started" in lines
    assert "| released" not in lines
    gate.open.set()
    row = api.wait_status(dep_id, "failed", "running")
    assert row["status"] == "failed"
    after = api.lines(dep_id)
    assert after.index("| released") > after.index("| waiting for the test")
