"""End to end with tracing on and shipped to the trace runtime (TRACE_PROXY=true): deploying a sample
leaves request, query, job, event, client_request and model entries there, grouped by batch, and the
trace dashboard shows them in a real browser. The sender uses the reference's single-entry wire
(TRACE_PROXY_MODE's default)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.upstack import DEPLOYER, running_up
from tests.support.browser import browser_page
from tests.support.stack import TraceRuntimeProcess, free_port, wait_for

SAMPLES = Path(__file__).parents[2] / "samples"
DASH = "trace-dash-token"
pytestmark = pytest.mark.timeout(600)


def entries(url: str, **query: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{url}/trace/api/entries", params={"limit": "500", **query},
                        headers={"Authorization": f"Bearer {DASH}"}, timeout=10)  # fmt: skip
    resp.raise_for_status()
    return list(resp.json()["entries"])


def test_a_traced_deploy_lands_in_the_trace_runtime_and_its_dashboard(tmp_path: Path, base_images: None) -> None:
    trace_port = free_port()
    trace_url = f"http://127.0.0.1:{trace_port}"
    trace_env = {
        "TRACE_ENABLED": "true", "TRACE_PROXY": "true", "TRACE_PROXY_URL": trace_url, "TRACE_PROXY_KEY_ID": "e2e",
        "TRACE_PROXY_SECRET": "e2e-secret-e2e-secret", "TRACE_DASHBOARD_TOKEN": DASH,
        "DB_DATABASE_SQLITE": str(tmp_path / "trace.sqlite"),
        "TRACE_WATCHERS": "request,query,exception,log,job,schedule,client_request,command,event,auth,model,redis",
    }  # fmt: skip
    with running_up(tmp_path, **trace_env) as up:
        runtime = TraceRuntimeProcess([DEPLOYER, "trace"], up.env, tmp_path / "logs", port=trace_port)
        try:
            runtime.wait_up()
            env = {**up.env, "DEPLOYER_TOKEN": up.token()}
            deployed = subprocess.run([DEPLOYER, "deploy", str(SAMPLES / "python-agent"), "--follow"], env=env,
                                      capture_output=True, text=True, timeout=300)  # fmt: skip
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr
            wanted = {"request", "query", "job", "event", "client_request", "model"}
            wait_for(lambda: wanted <= {e["type"] for e in entries(trace_url)}, timeout=60,
                     what=f"entries of every kind {wanted}")  # fmt: skip
            created = entries(trace_url, type="request", tag="status:201")  # the upload is the one 201
            upload = next(e for e in created if e["content"]["summary"].startswith("POST /api/deployments "))
            batch = [e["type"] for e in entries(trace_url, batch=upload["batchId"])]
            assert "query" in batch  # the queries of that request share its batch
            assert upload["content"]["headers"]["Authorization"] == "********"
            jobs = entries(trace_url, type="job")
            assert any(j["content"]["status"] == "processed" for j in jobs)  # pending → processed, one entry
            events = {e["content"]["status"] for e in entries(trace_url, type="event")}
            assert {"unpacking", "building", "running"} <= events
            rows = {("create", "Deployment"), ("update", "Deployment"), ("create", "DeploymentLog")}
            wait_for(lambda: rows <= {(e["content"]["action"], e["content"]["model"])
                                      for e in entries(trace_url, type="model")},
                     timeout=30, what=f"model entries {rows}")  # fmt: skip
            browse(trace_url, upload["uuid"], tmp_path)
        finally:
            runtime.stop()


def browse(url: str, request_uuid: str, tmp_path: Path) -> None:
    with browser_page() as page:
        page.goto(f"{url}/trace/entries")
        page.fill("input[name=token]", DASH)
        page.click("button[type=submit]")
        # Filtered to the one 201: `deploy --follow` polls, so the upload can be past the first page of requests.
        page.goto(f"{url}/trace/entries?type=request&tag=status:201")
        expect(page.locator("table.entries tbody tr").first).to_be_visible()
        page.click(f"tr[data-uuid='{request_uuid}'] a >> nth=0")
        expect(page.locator("#content")).to_contain_text("/api/deployments")
        expect(page.locator("h2", has_text="The rest of this batch")).to_be_visible()
        page.screenshot(path=str(tmp_path / "trace-entry.png"), full_page=True)
