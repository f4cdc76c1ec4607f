"""Forged dashboard sessions: the key that once signed them by default must sign nothing now."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine

from deployer.settings import Settings, load_settings
from deployer.store import tokens
from tests.support.live import LiveServer

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


def test_failed_logins_are_logged_without_the_token(
    settings: Settings, engine: Engine, make_live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_live_server(settings)
    guess = "dpl_" + "a" * 40
    with caplog.at_level(logging.WARNING, logger="web.auth"):
        assert requests.get(f"{server.url}/api/deployments", headers={"Authorization": f"Bearer {guess}"},
                            timeout=10).status_code == 401  # fmt: skip
        assert requests.get(f"{server.url}/t/{guess}/api/deployments", timeout=10).status_code == 401
    refused = [r.getMessage() for r in caplog.records if r.name == "web.auth"]
    assert len(refused) == 2 and "bearer login" in refused[0] and "path login" in refused[1]
    assert not any(guess in m for m in refused)


def _trace_login(url: str, token: str) -> requests.Session:
    s = requests.Session()
    page = s.get(f"{url}/trace/login", timeout=10).text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    s.post(f"{url}/trace/login", data={"token": token, "csrf_token": csrf}, timeout=10)
    return s


def test_trace_dashboard_sessions_end_at_logout_and_when_the_dashboard_token_changes(tmp_path: Path) -> None:
    from traces.runtime.app import create_trace_app

    def serve(token: str) -> LiveServer:
        env = {"DEPLOYER_DATA_ROOT": str(tmp_path), "TRACE_DASHBOARD_TOKEN": token}
        return LiveServer(create_trace_app(load_settings(env)))

    first = serve("first-dashboard-token")
    try:
        s = _trace_login(first.url, "first-dashboard-token")
        assert s.get(f"{first.url}/trace/entries", timeout=10).url.endswith("/trace/entries")
        assert "first-dashboard-token" not in str(s.cookies.get("trace_session"))
        kept = dict(s.cookies)
        page = s.get(f"{first.url}/trace/", timeout=10).text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        s.post(f"{first.url}/trace/logout", data={"csrf_token": csrf}, timeout=10)
        assert s.get(f"{first.url}/trace/entries", timeout=10).url.endswith("/trace/login")
    finally:
        first.close()
    rotated = serve("second-dashboard-token")  # same data root, so the same session key
    try:
        old = requests.get(f"{rotated.url}/trace/api/entries", cookies=kept, timeout=10)
        assert old.status_code == 401  # made with the old token: no longer a session
    finally:
        rotated.close()
