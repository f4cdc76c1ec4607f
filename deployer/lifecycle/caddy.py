"""Caddy routes through its admin API (docs/architecture.md#routing).

Decide: the JSON of the server, of one deployment's route and of the fallback route (pure). Apply:
`CaddyAdmin`, whose writes are serialised across processes by a file lock, and whose "add" is an
upsert — Caddy 2.6 accepts a second route with an `@id` that already exists, so a naive add would pile
up duplicates on restarts.

The server is ensured before any route is written (Caddy 2.6 answers `invalid traversal path` to a
route added before the http app exists, and logs every such request as an error). Its last route is a
fallback for `*.<domain>`: a host that no running deployment answers gets a plain 404 saying so, not
Caddy's empty 200. Deployment routes are inserted in front of it, so it stays last.

With DEPLOYER_PUBLIC_SCHEME=https the server terminates TLS (`Site.tls`): certificates come on demand,
at the first handshake for a host, from Caddy's local CA (`internal`) or from public ACME issuers
(`on_demand`); either way Caddy first asks the deployer's `/caddy/ask`, which approves only the hosts
of active deployments and the dashboard's. When DEPLOYER_DASHBOARD_HOST is set, the server's first
route serves the web app there (and Flower at /flower), ahead of every deployment route.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from deployer.bundles.slug import is_dns_label
from deployer.errors import CaddyError, CaddyUnreachable
from deployer.settings import Settings


def route_id(deployment_id: str) -> str:
    return f"deployment-{deployment_id}"


def route_json(deployment_id: str, slug: str, domain: str, port: int) -> dict[str, Any]:
    if not is_dns_label(slug):
        raise CaddyError(f"refusing to route an invalid slug {slug[:70]!r}")
    return {
        "@id": route_id(deployment_id),
        "match": [{"host": [f"{slug}.{domain}"]}],
        "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": f"127.0.0.1:{port}"}]}],
        "terminal": True,
    }


FALLBACK_ID = "deployer-fallback"
FALLBACK_BODY = "No deployment is running at {http.request.host}: it is stopped, or it does not exist.\n"


def fallback_json(domain: str) -> dict[str, Any]:
    """The server's last route: any `<slug>.<domain>` that no deployment route matched."""
    return {
        "@id": FALLBACK_ID,
        "match": [{"host": [f"*.{domain}"]}],
        "handle": [{
            "handler": "static_response",
            "status_code": 404,
            "headers": {"Content-Type": ["text/plain; charset=utf-8"], "Cache-Control": ["no-store"]},
            "body": FALLBACK_BODY,
        }],
        "terminal": True,
    }  # fmt: skip


DASHBOARD_ID = "deployer-dashboard"
ASK_PATH = "/caddy/ask"


@dataclass(frozen=True)
class Site:
    """What the server serves besides the deployment routes."""

    listen: str
    domain: str | None = None
    tls: str | None = None  # None: plain HTTP; "internal" or "on_demand" (see the module's doc)
    dashboard_host: str = ""
    dashboard_upstream: str = "127.0.0.1:8000"  # the web app, which also answers /caddy/ask
    flower_upstream: str = ""


def site_for(settings: Settings) -> Site:
    https = settings.public_scheme == "https"
    return Site(
        listen=settings.caddy_https_listen if https else settings.caddy_http_listen,
        domain=settings.wildcard_domain,
        tls=settings.tls_issuer if https else None,
        dashboard_host=settings.dashboard_host,
        dashboard_upstream=settings.dashboard_upstream,
        flower_upstream=settings.flower_upstream,
    )


def _proxy(upstream: str) -> dict[str, Any]:
    return {"handler": "reverse_proxy", "upstreams": [{"dial": upstream}]}


def dashboard_json(site: Site) -> dict[str, Any]:
    """The web app at the dashboard host, Flower at its /flower (Flower runs with --url_prefix=flower)."""
    routes: list[dict[str, Any]] = []
    if site.flower_upstream:
        routes.append({"match": [{"path": ["/flower", "/flower/*"]}], "handle": [_proxy(site.flower_upstream)]})
    routes.append({"handle": [_proxy(site.dashboard_upstream)]})
    return {
        "@id": DASHBOARD_ID,
        "match": [{"host": [site.dashboard_host]}],
        "handle": [{"handler": "subroute", "routes": routes}],
        "terminal": True,
    }


def head_routes(site: Site) -> list[dict[str, Any]]:
    return [dashboard_json(site)] if site.dashboard_host else []


def server_json(listen: str | Site, domain: str | None = None) -> dict[str, Any]:
    site = listen if isinstance(listen, Site) else Site(listen, domain)
    routes = head_routes(site) + ([fallback_json(site.domain)] if site.domain else [])
    server: dict[str, Any] = {"listen": [site.listen], "routes": routes}
    # Automatic HTTPS stays off: it would try to manage a certificate for every host a route names
    # (the fallback's wildcard too) at each config load. With TLS, the connection policy and the tls
    # app's on-demand policy get each host its certificate at its first handshake instead.
    server["automatic_https"] = {"disable": True}
    if site.tls:
        server["tls_connection_policies"] = [{}]
    return server


def tls_apps_json(site: Site) -> dict[str, Any]:
    """The `tls` (and `pki`) apps that go with `server_json(site)`; none for plain HTTP."""
    if not site.tls:
        return {}
    policy: dict[str, Any] = {"on_demand": True}
    if site.tls == "internal":
        policy["issuers"] = [{"module": "internal"}]
    apps: dict[str, Any] = {}
    if site.tls == "internal":  # the local CA, configured first: never into a trust store (no prompt, no sudo)
        apps["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    apps["tls"] = {"automation": {
        "policies": [policy],
        "on_demand": {"ask": f"http://{site.dashboard_upstream}{ASK_PATH}"},
    }}  # fmt: skip
    return apps


SHAPE_KEYS = ("listen", "automatic_https", "tls_connection_policies")


def _dig(config: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(config, dict):
            return None
        config = config.get(key)
    return config


IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})


def _never_connected(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


class CaddyAdmin:
    """`listen` and `domain` (or a whole `site`), when given, let every route write ensure the server
    (its TLS, dashboard and fallback routes) first; without them the caller ensures the server itself."""

    def __init__(
        self,
        admin_url: str,
        server: str,
        lock_path: Path,
        *,
        timeout: float = 5.0,
        listen: str | None = None,
        domain: str | None = None,
        site: Site | None = None,
    ) -> None:
        self.admin = admin_url.rstrip("/")
        self.server = server
        self.lock_path = lock_path
        self.timeout = timeout
        self.site = site
        self.listen = site.listen if site else listen
        self.domain = site.domain if site else domain
        self.http = requests.Session()
        self.http.headers["Origin"] = self.admin
        # A fresh connection per call: Caddy restarts its admin listener on some config loads, and a
        # kept-alive socket it closed meanwhile fails the next request.
        self.http.headers["Connection"] = "close"

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _request(self, method: str, path: str, body: Any = None) -> requests.Response:
        """Caddy 2.6 restarts its admin listener when a config change first creates the http app, and
        refuses connections for that moment: a connection that was never made is retried (the request
        was not sent, so even a POST is safe), and so is any idempotent call, for up to about 1.6 s."""
        delay = 0.025
        while True:
            try:
                return self.http.request(method, f"{self.admin}{path}", json=body, timeout=self.timeout)
            except requests.ConnectionError as exc:
                if not (_never_connected(exc) or method in IDEMPOTENT) or delay > 1.0:
                    raise CaddyUnreachable(self._unreachable(exc)) from None
            except requests.RequestException as exc:
                raise CaddyError(self._unreachable(exc)) from None
            time.sleep(delay)  # backing off before a retry, not waiting for another thread
            delay *= 2

    def _unreachable(self, exc: requests.RequestException) -> str:
        return f"Caddy admin API unreachable at {self.admin}: {type(exc).__name__}"

    def _check(self, resp: requests.Response, what: str) -> None:
        if resp.status_code >= 400:
            raise CaddyError(f"Caddy refused to {what}: HTTP {resp.status_code} {resp.text[:200]}")

    def ensure_server(self, listen: str | None = None) -> None:
        """Creates the server if it is missing (at the shallowest missing level, never replacing the
        whole config: that would drop the admin listener the operator configured) and keeps the
        fallback route last. Reads the whole config first, so no request of ours traverses a path
        that does not exist (Caddy logs each such request as an error)."""
        with self._writing():
            self._ensure_server_locked(listen)

    def _site(self, listen: str | None) -> Site | None:
        if self.site is not None:
            return self.site
        listen = listen or self.listen
        return Site(listen, self.domain) if listen else None

    def _ensure_server_locked(self, listen: str | None) -> None:
        site = self._site(listen)
        resp = self._request("GET", "/config/")
        self._check(resp, "read its config")
        config = resp.json()
        server = _dig(config, "apps", "http", "servers", self.server)
        if server is None:
            if site is None:
                raise CaddyError(f"Caddy has no server {self.server} and no listen address was given")
            at, body = self._creation(config, server_json(site))
            # POST on the root only when Caddy has no config at all (nothing to keep there)
            self._check(self._request("POST" if at == "/config/" else "PUT", at, body), f"create server {self.server}")
        elif site is not None and any(server.get(k) != server_json(site).get(k) for k in SHAPE_KEYS):
            # the settings changed (scheme, listen address): the new shape, the deployment routes kept
            routes = [r for r in server.get("routes") or [] if r.get("@id") not in (FALLBACK_ID, DASHBOARD_ID)]
            desired = server_json(site)
            desired["routes"] = head_routes(site) + routes + desired["routes"][len(head_routes(site)):]
            resp = self._request("POST", f"/config/apps/http/servers/{self.server}", desired)
            self._check(resp, f"update server {self.server}")
        elif self.site is not None or self.domain:
            self._frame(server.get("routes") or [], site)
        if site is not None:
            for name, app in tls_apps_json(site).items():
                if _dig(config, "apps", name) != app:
                    self._check(self._request("POST", f"/config/apps/{name}", app), f"configure its {name} app")

    def _creation(self, config: Any, server: dict[str, Any]) -> tuple[str, Any]:
        """Where to PUT what, so that only the missing levels are created."""
        if isinstance(_dig(config, "apps", "http", "servers"), dict):
            return f"/config/apps/http/servers/{self.server}", server
        if isinstance(_dig(config, "apps", "http"), dict):
            return "/config/apps/http/servers", {self.server: server}
        http = {"servers": {self.server: server}}
        if isinstance(_dig(config, "apps"), dict):
            return "/config/apps/http", http
        if isinstance(config, dict):
            return "/config/apps", {"http": http}
        return "/config/", {"apps": {"http": http}}

    def _frame(self, routes: list[dict[str, Any]], site: Site | None) -> None:
        """The dashboard route first and the fallback route last, each as the settings say."""
        head = head_routes(site) if site else []
        tail = [fallback_json(self.domain)] if self.domain else []
        ids = {DASHBOARD_ID, FALLBACK_ID}
        if routes[: len(head)] == head and (not tail or routes[-1:] == tail) and sum(
            1 for r in routes if r.get("@id") in ids
        ) == len(head) + len(tail):
            return
        for rid in ids:
            self._delete_all(rid)
        path = f"/config/apps/http/servers/{self.server}/routes"
        for route in reversed(head):
            has_routes = bool(self._routes())
            resp = self._request("PUT" if has_routes else "POST", f"{path}/0" if has_routes else path, route)
            self._check(resp, "add the dashboard route")
        for route in tail:
            self._check(self._request("POST", path, route), "add the fallback route")

    def _routes(self) -> list[dict[str, Any]] | None:
        """The server's routes, or None when it does not exist. Read through the root (`/config/`)
        so that a missing server is not a request error Caddy would log."""
        resp = self._request("GET", "/config/")
        self._check(resp, "read its config")
        routes = _dig(resp.json(), "apps", "http", "servers", self.server, "routes")
        return routes if isinstance(routes, list) else None

    def _delete_all(self, rid: str, routes: list[dict[str, Any]] | None = None) -> None:
        """Deletes every route with this `@id` (Caddy 2.6 may hold several), one call each; a route
        that is not there is not asked for (Caddy logs that 404 as an error)."""
        routes = self._routes() if routes is None else routes
        for _ in range(sum(1 for r in routes or [] if r.get("@id") == rid)):
            resp = self._request("DELETE", f"/id/{rid}")
            if resp.status_code == 404:
                return
            self._check(resp, f"delete route {rid}")

    def upsert_route(self, deployment_id: str, slug: str, domain: str, port: int) -> None:
        """Inserted after the dashboard route (`PUT …/routes/<n>`), so the fallback route stays last and
        no slug can take the dashboard's host."""
        route = route_json(deployment_id, slug, domain, port)
        path = f"/config/apps/http/servers/{self.server}/routes"
        with self._writing():
            if self.listen is not None:
                self._ensure_server_locked(None)
            self._delete_all(route["@id"])
            routes = self._routes() or []
            at_ = next((i for i, r in enumerate(routes) if r.get("@id") != DASHBOARD_ID), len(routes))
            method, at = ("PUT", f"{path}/{at_}") if at_ < len(routes) else ("POST", path)
            resp = self._request(method, at, route)
            self._check(resp, f"add route {route['@id']}")

    def remove_route(self, deployment_id: str) -> None:
        with self._writing():
            self._delete_all(route_id(deployment_id))

    def route_ids(self) -> list[str]:
        """The `@id` of each route of the server (none while it does not exist)."""
        return [r.get("@id", "") for r in self._routes() or []]
