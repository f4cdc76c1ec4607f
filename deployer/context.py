"""The collaborators a lifecycle step needs, built once per process and passed down explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import Engine

from deployer.bundles.secrets import MasterKey, ensure_master_key
from deployer.interfaces import Clock, ContainerRuntime, ImageBuilder, ProxyAdmin
from deployer.lifecycle.caddy import CaddyAdmin, site_for
from deployer.lifecycle.images import stream_build
from deployer.localkeys import installation_id, private_data_root
from deployer.settings import Settings
from deployer.store.db import make_engine
from deployer.store.events import Publisher, publisher_for
from deployer.store.models import utcnow
from deployer.store.transitions import OnTransition


@dataclass
class Context:
    settings: Settings
    engine: Engine
    master_key: MasterKey
    docker: ContainerRuntime
    caddy: ProxyAdmin | None
    http: requests.Session = field(default_factory=requests.Session)
    now: Clock = utcnow
    on_transition: OnTransition | None = None
    publisher: Publisher | None = None
    installation: str = ""  # labels what this installation owns on Docker (build_context fills it)
    build_image: ImageBuilder = stream_build


def caddy_for(settings: Settings) -> CaddyAdmin | None:
    if settings.skip_caddy:
        return None
    return CaddyAdmin(settings.caddy_admin_url, settings.caddy_server_name, settings.data_root / "caddy.lock",
                      site=site_for(settings))  # fmt: skip


def build_context(settings: Settings, **overrides: Any) -> Context:
    import docker

    publisher = publisher_for(settings.redis_url)
    if publisher is not None:
        overrides.setdefault("on_transition", publisher.status)
        overrides.setdefault("publisher", publisher)
    private_data_root(settings)
    parts: dict[str, Any] = {
        "settings": settings,
        "engine": overrides.pop("engine", None) or make_engine(settings.database_url),
        "master_key": overrides.pop("master_key", None) or ensure_master_key(settings.age_identity_path),
        "docker": overrides.pop("docker", None) or docker.from_env(timeout=300),
        "caddy": overrides.pop("caddy", None) or caddy_for(settings),
        "installation": overrides.pop("installation", None) or installation_id(settings),
    }
    return Context(**parts, **overrides)
