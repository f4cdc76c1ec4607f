"""The deploy page's folder upload in a real browser (Debian's Chromium, headless) against the web app
alone (no workers, no images): a keypair.json found in the folder is taken out of the zip and sent as
the keypair field."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from deployer.bundles.secrets import ensure_master_key, read_encrypted
from deployer.settings import Settings
from deployer.store import tokens
from tests.support.browser import browser_page, log_in
from tests.support.live import LiveServer
from tests.support.zips import KEYPAIR

OTHER_KEYPAIR = json.dumps({"public_key": "b3RoZXI=", "private_key": "b3RoZXItc2VjcmV0"}).encode()


@pytest.fixture
def server(make_live_server: Callable[..., LiveServer], settings: Settings) -> LiveServer:
    return make_live_server(settings, kick=lambda _name: None)


@pytest.fixture
def page(server: LiveServer, engine: Engine) -> Iterator[Any]:
    with browser_page() as page:
        log_in(page, server.url, tokens.create_token(engine, "browser-upload")[1])
        yield page


def project(root: Path) -> Path:
    folder = root / "my-agent"
    for rel, data in {
        "agent.config.json": json.dumps({"name": "Folder Agent"}).encode(),
        "agent.py": b"print('hi')\n",
        "keypair.json": KEYPAIR,
        "keys/old/KeyPair.JSON": OTHER_KEYPAIR,
        "docs/readme.txt": b"hello\n",
    }.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def stored(settings: Settings, deployment_id: str) -> tuple[list[str], bytes]:
    key = ensure_master_key(settings.age_identity_path)
    bundle = read_encrypted(key, settings.bundles_dir / f"{deployment_id}.zip.age")
    names = sorted(zipfile.ZipFile(io.BytesIO(bundle)).namelist())
    return names, read_encrypted(key, settings.keys_dir / f"{deployment_id}.keypair.json.age")


def test_a_keypair_in_an_uploaded_folder_is_sent_as_the_keypair_field_not_zipped(
    server: LiveServer, page: Any, settings: Settings, tmp_path: Path
) -> None:
    page.goto(f"{server.url}/deploy")
    page.set_input_files("#folder", str(project(tmp_path)))
    note = page.locator("#keypair-note")
    expect(note).to_have_text("my-agent/keypair.json is sent as the keypair, not inside the zip "
                              "(1 more left out of the zip too).")  # fmt: skip
    page.click("#deploy-button")
    page.wait_for_url(f"{server.url}/d/*", timeout=30_000)
    names, keypair = stored(settings, page.url.rsplit("/", 1)[1])
    assert names == ["my-agent/agent.config.json", "my-agent/agent.py", "my-agent/docs/readme.txt"]
    assert keypair == KEYPAIR


def test_a_chosen_keypair_file_wins_and_the_folders_keypair_still_stays_out(
    server: LiveServer, page: Any, settings: Settings, tmp_path: Path
) -> None:
    chosen = tmp_path / "chosen.json"
    chosen.write_bytes(OTHER_KEYPAIR)
    page.goto(f"{server.url}/deploy")
    page.set_input_files("#keypair", str(chosen))
    page.set_input_files("#folder", str(project(tmp_path)))
    expect(page.locator("#keypair-note")).to_contain_text("the keypair file you chose is sent")
    page.click("#deploy-button")
    page.wait_for_url(f"{server.url}/d/*", timeout=30_000)
    names, keypair = stored(settings, page.url.rsplit("/", 1)[1])
    assert not [n for n in names if n.lower().endswith("keypair.json")]
    assert keypair == OTHER_KEYPAIR
