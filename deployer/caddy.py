"""Caddy routes through its admin API (DESIGN §8).

Decide: the JSON of the server and of one deployment's route (pure). Apply: `CaddyAdmin`, whose writes
are serialised across processes by a file lock, and whose "add" is an upsert — Caddy 2.6 accepts a
second route with an `@id` that already exists, so a naive add would pile up duplicates on restarts.
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


def server_json(listen: str) -> dict[str, Any]:
    # Wildcard local domains have no public DNS: certificates are the operator's concern (a DNS-01
    # wildcard in front, or Caddy's own config); this server speaks plain HTTP.
    return {"listen": [listen], "routes": [], "automatic_https": {"disable": True}}


IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})


def _never_connected(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


class CaddyAdmin:
    def __init__(self, admin_url: str, server: str, lock_path: Path, *, timeout: float = 5.0) -> None:
        self.admin = admin_url.rstrip("/")
        self.server = server
        self.lock_path = lock_path
        self.timeout = timeout
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

    def ensure_server(self, listen: str) -> None:
        path = f"/config/apps/http/servers/{self.server}"
        with self._writing():
            resp = self._request("GET", path)
            if resp.status_code == 200 and resp.json() is not None:
                return
            server = server_json(listen)
            # Create the server at the shallowest level that is missing, never replacing the whole
            # config (that would drop the admin listener the operator configured).
            for at, body in (
                (path, server),
                ("/config/apps/http", {"servers": {self.server: server}}),
                ("/config/apps", {"http": {"servers": {self.server: server}}}),
            ):
                resp = self._request("PUT", at, body)
                if resp.status_code < 400:
                    break
            self._check(resp, f"create server {self.server}")

    def _delete_all(self, rid: str) -> None:
        for _ in range(100):
            resp = self._request("DELETE", f"/id/{rid}")
            if resp.status_code == 404:
                return
            self._check(resp, f"delete route {rid}")
        raise CaddyError(f"route {rid} would not go away")

    def upsert_route(self, deployment_id: str, slug: str, domain: str, port: int) -> None:
        route = route_json(deployment_id, slug, domain, port)
        with self._writing():
            self._delete_all(route["@id"])
            resp = self._request("POST", f"/config/apps/http/servers/{self.server}/routes", route)
            self._check(resp, f"add route {route['@id']}")

    def remove_route(self, deployment_id: str) -> None:
        with self._writing():
            self._delete_all(route_id(deployment_id))

    def route_ids(self) -> list[str]:
        resp = self._request("GET", f"/config/apps/http/servers/{self.server}/routes")
        # 404, or 400 "invalid traversal path" while the http app does not exist yet: no routes
        if resp.status_code in (400, 404) or resp.json() is None:
            return []
        self._check(resp, "list routes")
        return [r.get("@id", "") for r in resp.json()]
