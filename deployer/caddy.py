"""Caddy routes through its admin API (DESIGN §8).

Decide: the JSON of the server, of one deployment's route and of the fallback route (pure). Apply:
`CaddyAdmin`, whose writes are serialised across processes by a file lock, and whose "add" is an
upsert — Caddy 2.6 accepts a second route with an `@id` that already exists, so a naive add would pile
up duplicates on restarts.

The server is ensured before any route is written (Caddy 2.6 answers `invalid traversal path` to a
route added before the http app exists, and logs every such request as an error). Its last route is a
fallback for `*.<domain>`: a host that no running deployment answers gets a plain 404 saying so, not
Caddy's empty 200. Deployment routes are inserted in front of it, so it stays last.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from deployer.errors import DeployerError
from deployer.slug import is_dns_label


class CaddyError(DeployerError):
    code = "CADDY"


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


def server_json(listen: str, domain: str | None = None) -> dict[str, Any]:
    # Wildcard local domains have no public DNS: certificates are the operator's concern (a DNS-01
    # wildcard in front, or Caddy's own config); this server speaks plain HTTP.
    routes = [fallback_json(domain)] if domain else []
    return {"listen": [listen], "routes": routes, "automatic_https": {"disable": True}}


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
    """`listen` and `domain`, when given, let every route write ensure the server (and its fallback
    route) first; without them the caller ensures the server itself."""

    def __init__(
        self,
        admin_url: str,
        server: str,
        lock_path: Path,
        *,
        timeout: float = 5.0,
        listen: str | None = None,
        domain: str | None = None,
    ) -> None:
        self.admin = admin_url.rstrip("/")
        self.server = server
        self.lock_path = lock_path
        self.timeout = timeout
        self.listen = listen
        self.domain = domain
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
                    raise CaddyError(f"Caddy admin API unreachable at {self.admin}: {type(exc).__name__}") from None
            except requests.RequestException as exc:
                raise CaddyError(f"Caddy admin API unreachable at {self.admin}: {type(exc).__name__}") from None
            time.sleep(delay)  # backing off before a retry, not waiting for another thread
            delay *= 2

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

    def _ensure_server_locked(self, listen: str | None) -> None:
        listen = listen or self.listen
        resp = self._request("GET", "/config/")
        self._check(resp, "read its config")
        config = resp.json()
        server = _dig(config, "apps", "http", "servers", self.server)
        if server is None:
            if listen is None:
                raise CaddyError(f"Caddy has no server {self.server} and no listen address was given")
            at, body = self._creation(config, server_json(listen, self.domain))
            # POST on the root only when Caddy has no config at all (nothing to keep there)
            self._check(self._request("POST" if at == "/config/" else "PUT", at, body), f"create server {self.server}")
            return
        if self.domain:
            self._fallback_last(server.get("routes") or [])

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

    def _fallback_last(self, routes: list[dict[str, Any]]) -> None:
        assert self.domain is not None
        if routes and routes[-1].get("@id") == FALLBACK_ID and routes[-1] == fallback_json(self.domain):
            return
        if any(r.get("@id") == FALLBACK_ID for r in routes):
            self._delete_all(FALLBACK_ID)
        resp = self._request("POST", f"/config/apps/http/servers/{self.server}/routes", fallback_json(self.domain))
        self._check(resp, "add the fallback route")

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
        """Inserted first (`PUT …/routes/0`), so the fallback route stays last."""
        route = route_json(deployment_id, slug, domain, port)
        path = f"/config/apps/http/servers/{self.server}/routes"
        with self._writing():
            if self.listen is not None:
                self._ensure_server_locked(None)
            self._delete_all(route["@id"])
            method, at = ("PUT", f"{path}/0") if self._routes() else ("POST", path)
            resp = self._request(method, at, route)
            self._check(resp, f"add route {route['@id']}")

    def remove_route(self, deployment_id: str) -> None:
        with self._writing():
            self._delete_all(route_id(deployment_id))

    def route_ids(self) -> list[str]:
        """The `@id` of each route of the server (none while it does not exist)."""
        return [r.get("@id", "") for r in self._routes() or []]
