"""Forged dashboard sessions: the key that once signed them by default must sign nothing now."""

from __future__ import annotations

from collections.abc import Callable

import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine

from deployer import tokens
from deployer.settings import Settings
from tests.conftest import LiveServer

OLD_PUBLIC_KEY = "dev-insecure-change-me"  # the built-in key earlier versions fell back to


def forged_cookie(key: str, payload: dict[str, object]) -> str:
    app = Flask("forger")
    app.secret_key = key
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return str(serializer.dumps(payload))


def test_a_session_forged_with_the_old_public_key_reads_and_changes_nothing(
    settings: Settings, engine: Engine, make_live_server: Callable[..., LiveServer]
) -> None:
    tokens.create_token(engine, "real user")  # so that token id 1 exists
    server = make_live_server(settings)
    cookie = forged_cookie(OLD_PUBLIC_KEY, {"token_id": 1, "csrf": "x"})
    jar = {"session": cookie}
    listing = requests.get(f"{server.url}/api/deployments", cookies=jar, timeout=10)
    assert listing.status_code == 401 and listing.json()["code"] == "UNAUTHORIZED"
    stop = requests.post(f"{server.url}/api/deployments/anything/stop", cookies=jar, headers={"X-CSRF-Token": "x"},
                         timeout=10)  # fmt: skip
    assert stop.status_code == 401
    key_file = settings.data_root / "session.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and OLD_PUBLIC_KEY not in key_file.read_text()
