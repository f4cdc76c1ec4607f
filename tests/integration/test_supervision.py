"""The watcher on the real engine: crashes with their reasons, durable gap-free logs, restart policy."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from deployer.store.models import DeploymentLog
from tests.integration.conftest import Stack
from tests.integration.test_lifecycle import SERVER, agent_bundle
from tests.support.stack import wait_for

pytestmark = pytest.mark.timeout(600)
_log = DeploymentLog.__table__  # type: ignore[attr-defined]

SERVE_THEN = """
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
threading.Thread(target=HTTPServer(("0.0.0.0", 5000), H).serve_forever, daemon=True).start()
"""


def running(stack: Stack, code: str, **env: str) -> str:
    return running_all(stack, code, **env)[0]


def running_all(stack: Stack, *codes: str, **env: str) -> list[str]:
    """Uploads every agent first, so their builds overlap, then waits for each to run."""
    deps = [stack.api.upload(agent_bundle(code), env=json.dumps(env)).json()["id"] for code in codes]
    for dep in deps:
        row = stack.api.wait_status(dep, "running", "failed")
        assert row["status"] == "running", "\n".join(stack.api.lines(dep))
    return deps


def test_a_killed_container_is_crashed_with_exit_137_its_reason_and_nothing_held(stack: Stack) -> None:
    dep = running(stack, SERVER)
    container = stack.container(dep)
    assert container is not None
    container.kill()
    row = stack.api.wait_status(dep, "crashed", timeout=30)
    assert row["last_exit_code"] == 137 and row["last_crash_at"]
    assert row["error_message"] == "Container exited 137"
    # The transition commits first (it wins or loses against a stop); the details follow once the
    # tailer has stored the container's last output.
    lines = wait_for(lambda: (ls := stack.api.lines(dep)) and any(ln.startswith("restart policy") for ln in ls) and ls,
                     timeout=30, what="the crash details")  # fmt: skip
    assert "status: crashed — Container exited 137" in lines
    assert any(ln.startswith("container state: exit code 137") for ln in lines)
    assert "| booted" in lines  # the container's last output, kept in system lines
    wait_for(lambda: stack.container(dep) is None and stack.port_rows(dep) == 0, timeout=30, what="cleanup")
    assert f"deployment-{dep}" not in stack.routes()


def test_an_agent_that_exits_0_is_crashed_with_exit_code_0_recorded(stack: Stack) -> None:
    dep = running(stack, SERVE_THEN + "time.sleep(float(os.environ['LIVE']))\nsys.exit(0)\n", LIVE="1.5")
    row = stack.api.wait_status(dep, "crashed", timeout=60)
    assert row["last_exit_code"] == 0 and row["error_message"] == "Container exited 0"


def test_an_agent_past_its_memory_limit_is_crashed_as_oom_killed(stack: Stack) -> None:
    grow = SERVE_THEN + "time.sleep(1)\nblocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n"
    dep = running(stack, grow)
    row = stack.api.wait_status(dep, "crashed", timeout=60)
    assert row["error_message"] == "Container OOM-killed (memory limit 256 MB)"
    assert row["last_exit_code"] == 137


def stored(stack: Stack, dep: str, stream: str) -> list[str]:
    with stack.engine.connect() as conn:
        return list(conn.execute(
            select(_log.c.text).where(_log.c.deployment_id == dep, _log.c.stream == stream).order_by(_log.c.line_no)
        ).scalars())  # fmt: skip


def stored_stdout(stack: Stack, dep: str) -> list[str]:
    return stored(stack, dep, "stdout")


def all_line_numbers(stack: Stack, dep: str) -> list[int]:
    with stack.engine.connect() as conn:
        return list(conn.execute(
            select(_log.c.line_no).where(_log.c.deployment_id == dep).order_by(_log.c.line_no)
        ).scalars())  # fmt: skip


PRINTER = SERVE_THEN + """
n, pause = int(os.environ["LINES"]), float(os.environ["PAUSE"])
for start in range(1, n + 1, 1000):
    sys.stdout.write("".join(f"line {i}\\n" for i in range(start, min(start + 1000, n + 1))))
    sys.stdout.flush()
    time.sleep(pause)
print("stderr says hi", file=sys.stderr, flush=True)
time.sleep(3600)
"""
EXPECTED = [f"line {i}" for i in range(1, 200_001)]


def test_200000_lines_are_stored_once_each_in_order_with_gap_free_numbers(stack: Stack) -> None:
    dep = running(stack, PRINTER, LINES="200000", PAUSE="0")
    wait_for(lambda: len(stored_stdout(stack, dep)) >= 200_000, timeout=120, what="200000 lines", interval=0.5)
    assert stored_stdout(stack, dep) == EXPECTED
    numbers = all_line_numbers(stack, dep)
    assert numbers == list(range(1, len(numbers) + 1))
    wait_for(lambda: stored(stack, dep, "stderr") == ["stderr says hi"], timeout=30, what="the stderr line")
    stack.api.post(f"/api/deployments/{dep}/stop")


def test_no_line_is_lost_or_duplicated_when_the_watcher_is_killed_midway(stack: Stack) -> None:
    dep = running(stack, PRINTER, LINES="200000", PAUSE="0.04")  # ~8 s of output
    wait_for(lambda: len(stored_stdout(stack, dep)) >= 40_000, timeout=120, what="40000 lines", interval=0.2)
    stack.watcher.kill()
    killed_at = len(stored_stdout(stack, dep))
    assert killed_at < 200_000
    stack.restart_watcher()
    wait_for(lambda: len(stored_stdout(stack, dep)) >= 200_000, timeout=180, what="all lines", interval=0.5)
    assert stored_stdout(stack, dep) == EXPECTED
    numbers = all_line_numbers(stack, dep)
    assert numbers == list(range(1, len(numbers) + 1))
    stack.api.post(f"/api/deployments/{dep}/stop")


def test_on_failure_2_restarts_a_crashing_agent_twice_then_leaves_it_crashed(stack: Stack) -> None:
    stack.restart_watcher(DEPLOYER_RESTART_POLICY="on-failure:2")
    try:
        dep = running(stack, SERVE_THEN + "time.sleep(1.5)\nsys.exit(1)\n")

        def settled() -> bool:
            row = stack.api.row(dep)
            return row["status"] == "crashed" and row["restart_count"] == 2

        wait_for(settled, timeout=120, what="two restarts and a final crash", interval=0.2)
        final = "restart policy on-failure:2: restarted 2 times already; left crashed"
        wait_for(lambda: final in stack.api.lines(dep), timeout=30, what="the policy's last word")  # after the commit
        lines = stack.api.lines(dep)
        assert lines.count("status: queued — restart requested") == 2
        assert lines.count("status: crashed — Container exited 1") == 3
        assert "restart policy on-failure:2: restarting in 1 s (1 of 2)" in lines
        assert "restart policy on-failure:2: restarting in 2 s (2 of 2)" in lines
    finally:
        stack.restart_watcher()


TOGGLE = """
import os, pathlib
from http.server import BaseHTTPRequestHandler, HTTPServer
SICK = pathlib.Path("/tmp/sick")
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if self.path == "/health" and SICK.exists() else 200
        self.send_response(code); self.send_header("Content-Length", "0"); self.end_headers()
    def do_POST(self):
        SICK.touch() if self.path == "/sick" else SICK.unlink(missing_ok=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a):
        pass
HTTPServer(("0.0.0.0", 5000), H).serve_forever()
"""


def test_a_failing_health_endpoint_turns_unhealthy_and_recovers(stack: Stack) -> None:
    import requests

    dep = running(stack, TOGGLE)
    port = stack.api.row(dep)["port"]
    requests.post(f"http://127.0.0.1:{port}/sick", timeout=5)
    stack.api.wait_status(dep, "unhealthy", timeout=60)
    assert "status: unhealthy — [UNHEALTHY] /health failed 3 times in a row" in stack.api.lines(dep)
    requests.post(f"http://127.0.0.1:{port}/well", timeout=5)
    stack.api.wait_status(dep, "running", timeout=60)
    assert "status: running — [RECOVERED] /health answers 200 again" in stack.api.lines(dep)
    stack.api.post(f"/api/deployments/{dep}/stop")


def test_metrics_sample_cpu_as_a_fraction_of_one_cpu_and_memory_against_the_limit(stack: Stack) -> None:
    from deployer.context import build_context
    from deployer.store.models import DeploymentMetric
    from deployer.supervision.metrics import sample_metrics

    busy, idle = running_all(stack, SERVE_THEN + "while True:\n    pass\n", SERVE_THEN + "time.sleep(3600)\n")
    ctx = build_context(stack.settings, engine=stack.engine, docker=stack.docker)
    assert sample_metrics(ctx, window=1.0) >= 2
    table = DeploymentMetric.__table__  # type: ignore[attr-defined]
    with stack.engine.connect() as conn:
        rows = {r.deployment_id: r for r in conn.execute(select(table).where(table.c.deployment_id.in_([busy, idle])))}
    assert 0.3 <= rows[busy].cpu_pct <= 0.6  # a busy loop under a 500-millicpu limit
    assert rows[idle].cpu_pct < 0.1
    for r in rows.values():
        assert r.mem_limit_mb == 256 and 0 < r.mem_used_mb < 256
    for dep in (busy, idle):
        stack.api.post(f"/api/deployments/{dep}/stop")
