"""Building the lifecycle `Context` once per process from the settings (the composition root).

The `Context` type itself lives in `deployer.lifecycle.context`, beside the steps that take it, so
this module depends on the lifecycle and never the other way round; it is re-exported here for the
processes that build one."""

from __future__ import annotations

from typing import Any

from deployer.bundles.secrets import ensure_master_key
from deployer.lifecycle.caddy import CaddyAdmin, site_for
from deployer.lifecycle.context import Context
from deployer.localkeys import installation_id, private_data_root
from deployer.settings import Settings
from deployer.store.db import make_engine
from deployer.store.events import publisher_for

__all__ = ["Context", "build_context", "caddy_for"]


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
