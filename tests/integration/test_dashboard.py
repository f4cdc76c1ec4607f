"""The dashboard over real HTTP: token login, CSRF on every form, escaping, friendly errors; and the
OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import requests
from openapi_spec_validator import validate
from sqlalchemy import Engine

from deployer.settings import Settings
from deployer.store import tokens
from tests.support.http import error_of
from tests.support.live import LiveServer
from tests.support.rows import make_deployment_row


@pytest.fixture
def server(make_live_server: Callable[..., LiveServer], settings: Settings) -> LiveServer:
    return make_live_server(settings, kick=lambda _name: None, images=lambda: [{"id": "sha256:1", "tags": ["x"]}])


@pytest.fixture
def token(engine: Engine) -> str:
    return tokens.create_token(engine, "dash")[1]


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def logged_in(server: LiveServer, token: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    csrf = csrf_of(s.get(f"{server.url}/login", timeout=10).text)
    resp = s.post(f"{server.url}/login", data={"token": token, "csrf_token": csrf}, timeout=10)
    assert resp.status_code == 200 and "Deployments" in resp.text
    return s, csrf_of(resp.text)


def test_pages_need_a_login_and_a_wrong_token_is_refused(server: LiveServer) -> None:
    s = requests.Session()
    resp = s.get(f"{server.url}/deployments", timeout=10)
    assert resp.url.startswith(f"{server.url}/login")
    resp = s.post(f"{server.url}/login", data={"token": "dpl_nope", "csrf_token": csrf_of(resp.text)}, timeout=10)
    assert resp.status_code == 401 and "unknown or revoked" in resp.text


def test_a_login_form_without_its_csrf_token_is_refused(server: LiveServer, token: str) -> None:
    resp = requests.post(f"{server.url}/login", data={"token": token}, timeout=10)
    assert resp.status_code == 403 and "CSRF" in resp.text and "Traceback" not in resp.text


def test_stop_without_the_csrf_token_is_refused_and_with_it_works(
    server: LiveServer, token: str, engine: Engine
) -> None:
    dep = make_deployment_row(engine, status="running")
    s, csrf = logged_in(server, token)
    assert s.post(f"{server.url}/deployments/{dep}/stop", timeout=10).status_code == 403
    error_of(s.post(f"{server.url}/api/deployments/{dep}/stop", timeout=10), 403, "CSRF")  # session + JSON API too
    assert s.get(f"{server.url}/api/deployments/{dep}", timeout=10).json()["status"] == "running"
    resp = s.post(f"{server.url}/deployments/{dep}/stop", data={"csrf_token": csrf}, timeout=10)
    assert resp.status_code == 200 and resp.url.endswith(f"/d/{dep}")
    assert s.get(f"{server.url}/api/deployments/{dep}", timeout=10).json()["status"] == "stopped"


def test_user_supplied_strings_are_escaped(server: LiveServer, token: str, engine: Engine) -> None:
    dep = make_deployment_row(engine, name="<script>alert(1)</script>", status="failed",
                              error_message='<img src=x onerror="alert(2)">')  # fmt: skip
    s, _ = logged_in(server, token)
    for page in (f"/d/{dep}", "/deployments"):
        html = s.get(f"{server.url}{page}", timeout=10).text
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x" not in html


def test_dashboard_errors_are_pages_and_api_errors_are_json(server: LiveServer, token: str) -> None:
    s, _ = logged_in(server, token)
    page = s.get(f"{server.url}/d/does-not-exist", timeout=10)
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    assert "not found" in page.text and "Traceback" not in page.text
    api = s.get(f"{server.url}/api/deployments/does-not-exist", timeout=10)
    error_of(api, 404, "NOT_FOUND")


def test_logout_ends_the_session(server: LiveServer, token: str) -> None:
    s, csrf = logged_in(server, token)
    s.post(f"{server.url}/logout", data={"csrf_token": csrf}, timeout=10)
    error_of(s.get(f"{server.url}/api/stats", timeout=10), 401, "UNAUTHORIZED")


def test_stats_metrics_and_images_answer_with_their_shapes(server: LiveServer, token: str, engine: Engine) -> None:
    dep = make_deployment_row(engine, status="running", memory_mb=512)
    h = {"Authorization": f"Bearer {token}"}
    stats = requests.get(f"{server.url}/api/stats", headers=h, timeout=10).json()
    assert stats["active"] == 1 and stats["memory"]["reserved_mb"] == 512 and stats["containers"][0]["id"] == dep
    assert requests.get(f"{server.url}/api/deployments/{dep}/metrics", headers=h, timeout=10).json() == {"samples": []}
    bad = requests.get(f"{server.url}/api/deployments/{dep}/metrics?since=yesterday", headers=h, timeout=10)
    assert "since" in error_of(bad, 400, "INVALID_REQUEST")
    assert requests.get(f"{server.url}/api/images", headers=h, timeout=10).json()["images"][0]["tags"] == ["x"]


def test_the_openapi_document_is_valid_3_1_and_covers_every_api_route(server: LiveServer) -> None:
    doc = requests.get(f"{server.url}/api/openapi.json", timeout=10).json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    documented = {re.sub(r"\{[^}]+\}", "<>", p) for p in doc["paths"]}
    routes = {re.sub(r"<[^>]+>", "<>", r.rule) for r in server.app.url_map.iter_rules() if r.rule.startswith("/api")}
    assert routes == documented
