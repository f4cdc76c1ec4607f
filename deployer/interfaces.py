"""The outside services the domain drives, as the narrow shapes it relies on.

`ContainerRuntime` is the part of docker-py's `DockerClient` the deployer touches (containers,
networks, images, and the low-level API that builds and log streams go through); `ProxyAdmin` is what
the lifecycle asks of Caddy's admin API; `Clock` is where the domain reads the time. Production passes
the real client, `CaddyAdmin` and `utcnow`; tests pass in-memory fakes of the same shapes, so lifecycle
rules run without Docker, Caddy or a wall clock.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

Clock = Callable[[], datetime]


class ContainerCollection(Protocol):
    """docker-py's `client.containers`: what `deployer.lifecycle.containers` calls on it."""

    def get(self, container_id: str) -> Any: ...

    def run(self, **spec: Any) -> Any: ...

    def list(self, *, all: bool = ..., filters: Mapping[str, Any] | None = ...) -> builtins.list[Any]: ...


class NetworkCollection(Protocol):
    def list(self, *, names: builtins.list[str] | None = ...) -> builtins.list[Any]: ...

    def create(self, name: str, **options: Any) -> Any: ...


class ImageCollection(Protocol):
    def get(self, name: str) -> Any: ...

    def list(self, *, filters: Mapping[str, Any] | None = ...) -> builtins.list[Any]: ...


class ContainerRuntime(Protocol):
    """The Docker client as the domain and the watcher use it. Missing things raise docker-py's
    `docker.errors.NotFound` / `ImageNotFound`, as the real client does."""

    @property
    def containers(self) -> ContainerCollection: ...

    @property
    def networks(self) -> NetworkCollection: ...

    @property
    def images(self) -> ImageCollection: ...

    @property
    def api(self) -> Any: ...  # docker-py's low-level APIClient: image builds, stats, raw log streams

    def events(self, **options: Any) -> Any: ...




class ProxyAdmin(Protocol):
    """The routes of the deployer's server in the reverse proxy (Caddy's admin API in production)."""

    def ensure_server(self, listen: str | None = None) -> None: ...

    def upsert_route(self, deployment_id: str, slug: str, domain: str, port: int) -> None: ...

    def remove_route(self, deployment_id: str) -> None: ...

    def route_ids(self) -> builtins.list[str]: ...
