"""What the deployer asks of Caddy (pure JSON), and the reconcile pass that gives routes back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from deployer.errors import CaddyError
from deployer.lifecycle.caddy import (
    DASHBOARD_ID,
    FALLBACK_ID,
    Site,
    server_json,
    site_for,
    tls_apps_json,
)
from deployer.lifecycle.tls import slug_of
from deployer.settings import load_settings
from deployer.store.states import Status
from deployer.supervision.reconcile import Report, _restore_routes


def settings(tmp_path: Path, **env: str) -> Any:
    return load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), **env})


def test_plain_http_serves_on_the_http_listener_without_tls(tmp_path: Path) -> None:
    site = site_for(settings(tmp_path, DEPLOYER_PUBLIC_SCHEME="http", CADDY_HTTP_LISTEN=":8080"))
    server = server_json(site)
    assert server["listen"] == [":8080"] and "tls_connection_policies" not in server
    assert [r["@id"] for r in server["routes"]] == [DASHBOARD_ID, FALLBACK_ID]  # deployer.<domain> by default
    assert tls_apps_json(site) == {}


def test_https_on_a_local_domain_uses_caddys_local_ca_gated_by_the_ask_endpoint(tmp_path: Path) -> None:
    s = settings(tmp_path, DEPLOYER_WILDCARD_DOMAIN="apps.localhost", CADDY_HTTPS_LISTEN=":8443",
                 DEPLOYER_DASHBOARD_UPSTREAM="127.0.0.1:9000")  # fmt: skip
    site = site_for(s)
    assert site.tls == "internal" and site.listen == ":8443"
    assert server_json(site)["tls_connection_policies"] == [{}]
    apps = tls_apps_json(site)
    assert apps["tls"]["automation"]["policies"] == [{"on_demand": True, "issuers": [{"module": "internal"}]}]
    assert apps["tls"]["automation"]["on_demand"]["ask"] == "http://127.0.0.1:9000/caddy/ask"
    assert apps["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_https_on_a_real_domain_gets_public_certificates_on_demand(tmp_path: Path) -> None:
    site = site_for(settings(tmp_path, DEPLOYER_WILDCARD_DOMAIN="agents.example.org"))
    assert site.tls == "on_demand"
    assert tls_apps_json(site)["tls"]["automation"]["policies"] == [{"on_demand": True}]
    assert "pki" not in tls_apps_json(site)


def test_the_dashboard_host_comes_first_with_flower_under_its_slash_flower(tmp_path: Path) -> None:
    s = settings(tmp_path, DEPLOYER_DASHBOARD_HOST="deployer.apps.localhost", FLOWER_UPSTREAM="127.0.0.1:5555")
    routes = server_json(site_for(s))["routes"]
    assert [r["@id"] for r in routes] == [DASHBOARD_ID, FALLBACK_ID]
    assert routes[0]["match"] == [{"host": ["deployer.apps.localhost"]}]
    flower, web = routes[0]["handle"][0]["routes"]
    assert flower["match"] == [{"path": ["/flower", "/flower/*"]}]
    assert flower["handle"][0]["upstreams"] == [{"dial": "127.0.0.1:5555"}]
    assert web["handle"][0]["upstreams"] == [{"dial": "127.0.0.1:8000"}]


def test_printed_urls_carry_a_non_default_public_port(tmp_path: Path) -> None:
    assert settings(tmp_path).public_host_suffix == "deployer.localhost"
    assert settings(tmp_path, DEPLOYER_PUBLIC_PORT="8443").public_host_suffix == "deployer.localhost:8443"


def test_the_ask_endpoint_reads_one_label_under_the_wildcard_domain() -> None:
    assert slug_of("Echo-1.Apps.Test", "apps.test") == "echo-1"
    assert slug_of("echo.apps.test:443", "apps.test") == "echo"
    assert slug_of("a.b.apps.test", "apps.test") is None
    assert slug_of("apps.test", "apps.test") is None
    assert slug_of("echo.other.test", "apps.test") is None


class FlakyCaddy:
    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.added: list[str] = []

    def ensure_server(self, listen: str | None = None) -> None:
        return None

    def route_ids(self) -> list[str]:
        return []

    def upsert_route(self, deployment_id: str, slug: str, domain: str, port: int) -> None:
        if deployment_id == self.failing:
            raise CaddyError("Caddy refused to add route: HTTP 500")
        self.added.append(deployment_id)


def test_a_route_that_fails_to_come_back_does_not_stop_the_others(tmp_path: Path) -> None:
    caddy = FlakyCaddy(failing="b")
    ctx = SimpleNamespace(caddy=caddy, settings=settings(tmp_path))
    rows = {i: SimpleNamespace(id=i, slug=f"s{i}", port=13000 + n, status=Status.RUNNING)
            for n, i in enumerate(["a", "b", "c"])}  # fmt: skip
    report = Report()
    _restore_routes(ctx, rows, report)  # type: ignore[arg-type]
    assert caddy.added == ["a", "c"] and report.routes == ["a", "c"]
    assert len(report.errors) == 1 and report.errors[0].startswith("route of b")


def test_site_defaults_keep_the_plain_server_of_earlier_versions() -> None:
    assert server_json(Site(":80", "apps.test")) == server_json(":80", "apps.test")
