"""The real Zynd clients against a real deployer: a project as `zynd agent init` / `zynd service init`
write it, a keypair from the SDK's own key functions, uploaded exactly as `zynd deploy` sends it."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Stack
from tests.support.stack import wait_for
from tests.support.zynd_scaffold import scaffold, sdk_keypair

pytestmark = pytest.mark.timeout(900)

# What `zynd deploy` leaves out of its zip (everything else goes in, dotfiles included).
CLI_SKIPPED_DIRS = {"node_modules", ".venv", "venv", ".git", ".github", "dist", "build", "target", ".next",
                    ".turbo", ".cache", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".idea",
                    ".vscode"}  # fmt: skip
CLI_SKIPPED_FILES = {".DS_Store", "Thumbs.db"}


def cli_zip(root: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root)
            if p.is_file() and not set(rel.parts[:-1]) & CLI_SKIPPED_DIRS and p.name not in CLI_SKIPPED_FILES:
                zf.write(p, rel.as_posix())
    return buf.getvalue()


def zynd_deploy(deployer_url: str, project: bytes, keypair: bytes) -> requests.Response:
    """The one request `zynd deploy --deployer <url>` makes: no auth header, the URL's path kept."""
    files = {
        "project.zip": ("project.zip", project, "application/zip"),
        "keypair.json": ("keypair.json", keypair, "application/json"),
    }
    return requests.post(f"{deployer_url.rstrip('/')}/api/deployments", files=files, timeout=60)


def token_of(stack: Stack) -> str:
    return str(stack.api.s.headers["Authorization"]).split()[1]


@pytest.mark.parametrize("entity", ["agent", "service"])
def test_a_project_made_by_zynd_init_and_sent_as_zynd_deploy_sends_it_runs_with_its_entity_id(
    stack: Stack, tmp_path: Path, entity: str
) -> None:
    keypair, entity_id = sdk_keypair(stack.settings.agent_base_image, entity)
    name = f"zynd {entity} {uuid.uuid4().hex[:6]}"
    origin = scaffold(tmp_path / "project", entity=entity, name=name, home=tmp_path / "home")
    print(f"scaffold entry and payload from {origin}")
    assert not (tmp_path / "project" / "requirements.txt").exists()  # the SDK comes with the base

    deployer_url = f"{stack.api.url}/t/{token_of(stack)}"
    # The SDK imports a lot (langchain, web3, x402): on a busy two-core machine its first /health can
    # take over ten seconds, the test stack's boot limit; this uses the product's default instead.
    with stack.worker_with(boot_health_timeout_ms=120000):
        resp = zynd_deploy(deployer_url, cli_zip(tmp_path / "project"), keypair)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        row = stack.api.wait_status(body["id"], "running", "failed", timeout=600)
    assert {"id", "slug", "status", "runtime", "image"} <= body.keys()
    assert body["runtime"] == "python" and body["status"] == "queued"

    assert row["status"] == "running", "\n".join(stack.api.lines(body["id"])[-60:])
    health = stack.caddy.get(f"{body['slug']}.{stack.settings.wildcard_domain}", "/health")
    assert health.status_code == 200 and health.json()["entity_id"] == entity_id
    filled = wait_for(lambda: stack.api.row(body["id"])["entity_id"], timeout=30, what="the entity id")
    assert filled == entity_id

    # The dashboard link the CLI prints leads to the deployment's page, signing nobody in.
    link = requests.get(f"{deployer_url}/d/{body['id']}", allow_redirects=False, timeout=10)
    assert link.status_code in (302, 303) and link.headers["Location"].endswith(f"/d/{body['id']}")
    assert "Set-Cookie" not in link.headers
    assert stack.api.post(f"/api/deployments/{body['id']}/stop").status_code == 202


def test_zynd_deploy_with_a_wrong_token_gets_a_readable_error_and_creates_nothing(stack: Stack, tmp_path: Path) -> None:
    scaffold(tmp_path / "project", entity="agent", name="zynd wrong token", home=tmp_path / "home")
    before = stack.api.get("/api/deployments").json()["total"]
    resp = zynd_deploy(f"{stack.api.url}/t/not-a-token", cli_zip(tmp_path / "project"), b"{}")
    assert resp.status_code == 401
    assert isinstance(resp.json()["error"], str) and resp.json()["code"] == "UNAUTHORIZED"
    assert "not-a-token" not in resp.text
    assert stack.api.get("/api/deployments").json()["total"] == before
