"""The Caddy admin client against a real Caddy: the first route creates the http app (Caddy 2.6 then
restarts its admin listener, refusing connections for a moment) and the routes right after it still
land; an admin API that never answers is a clear error, after a short wait."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from deployer.errors import CaddyError
from deployer.lifecycle.caddy import FALLBACK_ID, CaddyAdmin
from tests.support.stack import Caddy, free_port


def test_routes_added_right_after_the_server_is_created_all_land(tmp_path: Path) -> None:
    caddy = Caddy(tmp_path / "caddy")
    try:
        admin = CaddyAdmin(caddy.admin_url, "srv", tmp_path / "caddy.lock")
        admin.ensure_server(f"127.0.0.1:{caddy.http_port}")  # the config load that restarts the admin listener
        for i in range(5):
            admin.upsert_route(f"dep-{i}", f"app-{i}", "test.localhost", 15000 + i)
        assert sorted(admin.route_ids()) == [f"deployment-dep-{i}" for i in range(5)]
    finally:
        caddy.close()


def test_a_refused_connection_is_retried_until_the_admin_api_listens_again(tmp_path: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused, as during the restart
    admin = CaddyAdmin(f"http://127.0.0.1:{srv.getsockname()[1]}", "srv", tmp_path / "caddy.lock")

    def listen_a_moment_later() -> None:
        time.sleep(0.2)  # the scenario: the listener comes back after the first attempts were refused
        srv.listen(1)
        srv.settimeout(10)  # a client that gave up never connects: do not hang the test
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            return
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
                     b"Connection: close\r\n\r\nnull")  # fmt: skip
        conn.close()

    t = threading.Thread(target=listen_a_moment_later)
    t.start()
    try:
        assert admin.route_ids() == []
    finally:
        t.join()
        srv.close()


def test_an_admin_api_that_never_answers_is_a_clear_error(tmp_path: Path) -> None:
    admin = CaddyAdmin(f"http://127.0.0.1:{free_port()}", "srv", tmp_path / "caddy.lock")
    with pytest.raises(CaddyError, match="Caddy admin API unreachable"):
        admin.route_ids()


def test_a_route_written_to_a_caddy_started_empty_creates_the_server_first_and_caddy_logs_no_error(
    tmp_path: Path,
) -> None:
    caddy = Caddy(tmp_path / "caddy")
    try:
        admin = CaddyAdmin(caddy.admin_url, "srv", tmp_path / "caddy.lock",
                           listen=f"127.0.0.1:{caddy.http_port}", domain="apps.test")  # fmt: skip
        assert admin.route_ids() == []  # no server yet: read through the root, no traversal error
        admin.upsert_route("dep-1", "app-1", "apps.test", caddy.http_port)
        admin.upsert_route("dep-1", "app-1", "apps.test", caddy.http_port)  # an upsert: still one route
        admin.remove_route("dep-2")  # never there
        assert admin.route_ids() == ["deployment-dep-1", FALLBACK_ID]
        caddy.log.flush()
        errors = [ln for ln in (tmp_path / "caddy" / "caddy.log").read_text().splitlines() if '"error"' in ln]
        assert errors == []
    finally:
        caddy.close()


def test_a_host_no_deployment_answers_gets_a_404_saying_so_and_the_fallback_stays_last(tmp_path: Path) -> None:
    caddy = Caddy(tmp_path / "caddy")
    try:
        admin = CaddyAdmin(caddy.admin_url, "srv", tmp_path / "caddy.lock",
                           listen=f"127.0.0.1:{caddy.http_port}", domain="apps.test")  # fmt: skip
        admin.ensure_server()
        gone = caddy.get("stopped-one.apps.test")
        assert gone.status_code == 404
        assert gone.text == "No deployment is running at stopped-one.apps.test: it is stopped, or it does not exist.\n"
        assert gone.headers["Content-Type"].startswith("text/plain")
        for i in range(3):
            admin.upsert_route(f"dep-{i}", f"app-{i}", "apps.test", free_port())
        assert admin.route_ids()[-1] == FALLBACK_ID and len(admin.route_ids()) == 4
        assert caddy.get("app-1.apps.test").status_code == 502  # routed to its (absent) upstream, not the 404
        assert caddy.get("elsewhere.example").text == ""  # other hosts are none of the deployer's business
        # a route someone appended after the fallback: the next ensure puts the fallback last again
        requests.post(f"{caddy.admin_url}/config/apps/http/servers/srv/routes",
                      json={"@id": "late", "match": [{"host": ["late.apps.test"]}],
                            "handle": [{"handler": "static_response", "body": "late"}]}, timeout=5)  # fmt: skip
        admin.ensure_server()
        assert admin.route_ids()[-2:] == ["late", FALLBACK_ID]
        assert caddy.get("late.apps.test").text == "late"
    finally:
        caddy.close()


def test_a_caddy_with_an_empty_apps_object_gets_the_server_too(tmp_path: Path) -> None:
    caddy = Caddy(tmp_path / "caddy")
    try:
        requests.post(f"{caddy.admin_url}/config/apps", json={}, timeout=5)  # "apps" present but empty
        admin = CaddyAdmin(caddy.admin_url, "srv", tmp_path / "caddy.lock",
                           listen=f"127.0.0.1:{caddy.http_port}", domain="apps.test")  # fmt: skip
        admin.ensure_server()
        assert admin.route_ids() == [FALLBACK_ID]
    finally:
        caddy.close()
