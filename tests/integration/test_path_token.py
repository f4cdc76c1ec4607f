"""Path-scoped auth over real HTTP : `/t/<token>/api/…` works exactly like the bearer
header, for reads, writes and both log streams; a wrong one gets the same 401; the token shows up in
no access log (gunicorn's, werkzeug's), no trace entry and no error body; `/t/<token>/d/<id>`, the
link the real `zynd deploy` prints, redirects to the dashboard page without signing anyone in; and an
upload made exactly as that CLI makes it is accepted."""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import simple_websocket
from sqlalchemy import Engine
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from deployer.settings import Settings
from deployer.store import tokens
from deployer.store.loglines import append_lines
from tests.integration.test_streams import sse_events
from tests.support.http import error_of
from tests.support.live import LiveServer
from tests.support.rows import make_deployment_row
from tests.support.stack import GroupProcess, free_port, settings_env, wait_for
from tests.support.zips import KEYPAIR, agent_zip, zip_folder
from traces.recorder.core import Recorder
from web import create_app

SAMPLES = Path(__file__).parents[2] / "samples"


class Kept:
    """A trace sink that keeps what it is given."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def write(self, entries: list[dict[str, Any]]) -> None:
        self.entries += entries

    def update(self, uuid: str, content: dict[str, Any], tags: list[str]) -> None:
        self.entries.append({"uuid": uuid, "content": content, "tags": tags})


@pytest.fixture
def kicks() -> list[str]:
    return []


@pytest.fixture
def server(make_live_server: Callable[..., LiveServer], settings: Settings, kicks: list[str]) -> LiveServer:
    return make_live_server(settings, kick=kicks.append)


@pytest.fixture
def token(engine: Engine) -> str:
    return tokens.create_token(engine, "path")[1]


def running_row(engine: Engine, lines: int = 3) -> str:
    dep = make_deployment_row(engine, status="running")
    with engine.begin() as conn:
        append_lines(conn, dep, [("stdout", f"line {i}") for i in range(1, lines + 1)])
    return dep


def test_a_token_in_the_path_reads_writes_and_stops_like_the_header(
    server: LiveServer, token: str, kicks: list[str]
) -> None:
    base = f"{server.url}/t/{token}"
    created = requests.post(f"{base}/api/deployments", files={"project.zip": ("p.zip", agent_zip(), "application/zip"),
                            "keypair.json": ("k.json", KEYPAIR, "application/json")}, timeout=30)  # fmt: skip
    assert created.status_code == 201, created.text
    dep = created.json()["id"]
    listed = requests.get(f"{base}/api/deployments", timeout=10)
    assert listed.status_code == 200 and [d["id"] for d in listed.json()["deployments"]] == [dep]
    assert requests.get(f"{base}/api/deployments/{dep}", timeout=10).json()["status"] == "queued"
    stopped = requests.post(f"{base}/api/deployments/{dep}/stop", timeout=10)
    assert stopped.status_code == 202 and stopped.json() == {"id": dep, "status": "stopped"}
    assert kicks == ["drain_queue", "reconcile_stops"]
    assert requests.get(f"{base}/api/health", timeout=10).status_code == 200  # public routes answer there too


def test_the_sse_and_websocket_log_streams_take_the_token_in_the_path(
    server: LiveServer, token: str, engine: Engine
) -> None:
    dep = running_row(engine)
    with requests.get(f"{server.url}/t/{token}/api/deployments/{dep}/logs/stream", stream=True, timeout=30) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        seen = []
        for event, data, _ in sse_events(resp):
            if event == "ready":
                break
            seen.append(data["text"])
    assert seen == ["line 1", "line 2", "line 3"]
    ws_base = server.url.replace("http://", "ws://")
    ws = simple_websocket.Client.connect(f"{ws_base}/t/{token}/ws/deployments/{dep}/logs?after=2")
    try:
        hello = json.loads(ws.receive(timeout=20))
        log = json.loads(ws.receive(timeout=20))
    finally:
        ws.close()
    assert (hello["type"], hello["id"], log["type"], log["text"]) == ("hello", dep, "log", "line 3")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/deployments"), ("POST", "/api/deployments"), ("GET", "/api/deployments/x/logs"),
     ("POST", "/api/deployments/x/stop"), ("GET", "/api/deployments/x/logs/stream"), ("GET", "/api/stats")],
)  # fmt: skip
def test_a_wrong_path_token_gets_the_same_401_as_a_wrong_header(server: LiveServer, method: str, path: str) -> None:
    wrong = "dpl_" + "x" * 43
    by_header = requests.request(method, f"{server.url}{path}", headers={"Authorization": f"Bearer {wrong}"},
                                 timeout=10)  # fmt: skip
    by_path = requests.request(method, f"{server.url}/t/{wrong}{path}", timeout=10)
    assert error_of(by_path, 401, "UNAUTHORIZED") == error_of(by_header, 401, "UNAUTHORIZED")
    assert by_path.json() == by_header.json() and wrong not in by_path.text
    error_of(requests.request(method, f"{server.url}/t/{path}", timeout=10), 401, "UNAUTHORIZED")  # empty token


def test_a_revoked_token_in_the_path_is_refused(server: LiveServer, token: str, engine: Engine) -> None:
    assert requests.get(f"{server.url}/t/{token}/api/deployments", timeout=10).status_code == 200
    tokens.revoke_token(engine, "path")
    error_of(requests.get(f"{server.url}/t/{token}/api/deployments", timeout=10), 401, "UNAUTHORIZED")


def test_error_bodies_under_a_token_path_never_carry_the_token(server: LiveServer, token: str) -> None:
    base = f"{server.url}/t/{token}"
    answers = [
        (requests.get(f"{base}/api/deployments/nope", timeout=10), 404, "NOT_FOUND"),
        (requests.get(f"{base}/api/no-such-route", timeout=10), 404, "NOT_FOUND"),
        (requests.put(f"{base}/api/deployments", timeout=10), 405, "METHOD_NOT_ALLOWED"),
        (requests.get(f"{base}/api/deployments", params={"limit": "x"}, timeout=10), 400, "INVALID_REQUEST"),
        (requests.post(f"{base}/api/deployments", data={"name": "x"}, timeout=10), 400, "INVALID_UPLOAD"),
    ]
    for resp, status, code in answers:
        error_of(resp, status, code)
        assert token not in resp.text and token not in json.dumps(dict(resp.headers))


def test_the_link_the_cli_prints_redirects_to_the_page_without_signing_anyone_in(
    server: LiveServer, token: str, engine: Engine
) -> None:
    dep = make_deployment_row(engine, status="running")
    for presented in (token, "dpl_wrong"):  # the same answer either way: nothing to learn from it
        resp = requests.get(f"{server.url}/t/{presented}/d/{dep}", allow_redirects=False, timeout=10)
        assert resp.status_code == 302 and resp.headers["Location"] == f"/d/{dep}"
        assert "Set-Cookie" not in resp.headers and resp.headers["Referrer-Policy"] == "no-referrer"
    followed = requests.Session().get(f"{server.url}/t/{token}/d/{dep}", timeout=10)
    assert followed.url == f"{server.url}/login?next=/d/{dep}"  # a page that asks for a login
    assert token not in followed.text


def test_a_token_path_never_redirects_off_the_site(server: LiveServer, token: str) -> None:
    resp = requests.get(f"{server.url}/t/{token}//evil.example/x?y=1", allow_redirects=False, timeout=10)
    assert resp.status_code == 302 and resp.headers["Location"] == "/evil.example/x?y=1"


def test_the_former_page_address_redirects_to_the_d_page(server: LiveServer, engine: Engine) -> None:
    dep = make_deployment_row(engine, status="running")
    resp = requests.get(f"{server.url}/deployments/{dep}", allow_redirects=False, timeout=10)
    assert resp.status_code == 301 and resp.headers["Location"] == f"/d/{dep}"


@pytest.fixture
def mounted(settings: Settings) -> Iterator[Callable[[str], LiveServer]]:
    """The app on a loopback port, at the root or under a path prefix (as behind a proxy at /prefix)."""
    made: list[tuple[LiveServer, Any]] = []

    def make(prefix: str) -> LiveServer:
        app = create_app(settings, kick=lambda _name: None)
        server = LiveServer(DispatcherMiddleware(NotFound(), {prefix: app}) if prefix else app)
        made.append((server, app))
        return server

    yield make
    for server, app in made:
        server.close()
        app.extensions["deployer"].engine.dispose()


@pytest.mark.parametrize("prefix", ["", "/deployer"])
def test_an_upload_made_exactly_as_the_real_zynd_deploy_makes_it_is_accepted(
    mounted: Callable[[str], LiveServer], token: str, prefix: str
) -> None:
    # `zynd deploy --deployer <base>/t/<token>`: one multipart POST to <deployer>/api/deployments with the
    # two file fields (and an image pin when --image is given); no auth header; the path prefix kept.
    deployer_url = f"{mounted(prefix).url}{prefix}/t/{token}/"
    endpoint = f"{deployer_url.rstrip('/')}/api/deployments"
    files: dict[str, Any] = {
        "project.zip": ("project.zip", zip_folder(SAMPLES / "python-agent"), "application/zip"),
        "keypair.json": ("keypair.json", (SAMPLES / "python-agent" / "keypair.json").read_bytes(), "application/json"),
    }
    image = {"image": "zyndai/agent:0.6.5"} if prefix else None
    resp = requests.post(endpoint, files=files, data=image, timeout=30)  # (the CLI itself sets no timeout)
    assert resp.status_code == 201, resp.text
    dep = resp.json()
    assert {"id", "slug", "status", "runtime", "image"} <= set(dep)
    assert (dep["status"], dep["runtime"], dep["image"]) == ("queued", "python", None)
    assert dep["slug"].startswith("echo-agent-")

    live = requests.get(f"{deployer_url.rstrip('/')}/d/{dep['id']}", allow_redirects=False, timeout=10)  # "Live URL"
    assert live.status_code == 302 and live.headers["Location"] == f"{prefix}/d/{dep['id']}"
    logs = requests.get(f"{deployer_url.rstrip('/')}/api/deployments/{dep['id']}/logs", timeout=10)  # "Logs"
    assert logs.status_code == 200 and logs.json()["lines"][0]["text"].startswith("status: queued")
    if prefix:
        assert "zyndai/agent:0.6.5" in logs.json()["lines"][1]["text"]

    # A refusal: the CLI prints `Deployer returned HTTP 400: ${String(body.error)}` — a readable sentence.
    files["project.zip"] = ("project.zip", agent_zip(**{"keypair.json": KEYPAIR}), "application/zip")
    refused = requests.post(endpoint, files=files, timeout=30)
    assert "belongs in the keypair.json upload field" in error_of(refused, 400, "INVALID_UPLOAD")


def test_werkzeug_access_lines_show_the_path_masked(
    server: LiveServer, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        assert requests.get(f"{server.url}/t/{token}/api/deployments", timeout=10).status_code == 200
        assert requests.get(f"{server.url}/t/{token}/d/x", allow_redirects=False, timeout=10).status_code == 302
    assert token not in caplog.text
    assert "GET /t/***/api/deployments HTTP/1.1" in caplog.text and "GET /t/***/d/x HTTP/1.1" in caplog.text


def test_trace_entries_of_token_path_requests_never_carry_the_token(
    make_live_server: Callable[..., LiveServer], settings: Settings, token: str, engine: Engine
) -> None:
    sink = Kept()
    rec = Recorder(sink, watchers=frozenset({"request", "exception", "auth", "query"}))
    server = make_live_server(settings, kick=lambda _name: None, recorder=rec)
    dep = running_row(engine)
    base = f"{server.url}/t/{token}"
    assert requests.get(f"{base}/api/deployments/{dep}", timeout=10).status_code == 200
    assert requests.get(f"{base}/api/deployments/nope?after=1", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/t/{token}x/api/stats", timeout=10).status_code == 401
    assert requests.get(f"{base}/d/{dep}", allow_redirects=False, timeout=10).status_code == 302
    assert rec.flush()
    requests_seen = [e["content"] for e in sink.entries if e.get("type") == "request"]
    assert sorted(c["uri"] for c in requests_seen) == sorted(
        [f"/api/deployments/{dep}", "/api/deployments/nope?after=1", "/api/stats", f"/d/{dep}"]
    )
    assert token not in json.dumps(sink.entries, default=str)


class Gunicorn(GroupProcess):
    """`deployer serve`: the real gunicorn with the options the web service runs with."""

    def __init__(self, settings: Settings, logdir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        cmd = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", port, "--workers", "1",
               "--threads", "8"]  # fmt: skip
        self._spawn(cmd, settings_env(settings), logdir, "gunicorn")
        wait_for(lambda: self._dead() or self._up(), timeout=60, what="gunicorn to answer")

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False


def test_gunicorns_access_and_error_lines_never_show_the_token(
    settings: Settings, token: str, engine: Engine, tmp_path: Path
) -> None:
    dep = make_deployment_row(engine, status="running")
    server = Gunicorn(settings, tmp_path)
    try:
        base = f"{server.url}/t/{token}"
        assert requests.get(f"{base}/api/deployments", timeout=10).status_code == 200
        assert requests.get(f"{base}/d/{dep}", allow_redirects=False, timeout=10).status_code == 302
        assert requests.get(f"{server.url}/t/{token}x/api/deployments", timeout=10).status_code == 401
        # Requests gunicorn refuses itself: it logs them from its own copy of the request line.
        host, port = server.url.removeprefix("http://").split(":")
        for bad in (f"GET /t/{token}/api/deployments\x7f HTTP/1.1\r\n\r\n",
                    f"GET /t/{token}/api/deployments HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"):  # fmt: skip
            with socket.create_connection((host, int(port)), timeout=10) as raw:
                raw.sendall(bad.encode())
                assert raw.recv(1024).startswith(b"HTTP/1.1 400")
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert token not in log
    assert "Invalid HTTP request line: 'GET /t/***/api/deployments\\x7f HTTP/1.1'" in log  # masked by the filter
    assert '"GET /t/***/api/deployments HTTP/1.1" 200' in log
    assert f'"GET /t/***/d/{dep} HTTP/1.1" 302' in log
    assert '"GET /t/***/api/deployments HTTP/1.1" 401' in log
