"""The container's environment and the rewritten config JSON (docs/architecture.md#containers-and-images), as
pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTAINER_PORT = 5000
KEYPAIR_IN_CONTAINER = "/app/keypair.json"
DEFAULT_REGISTRY_URL = "https://dns01.zynd.ai"  # the reference's public registry (the settings default too)


def registry_or_default(url: str | None) -> str:
    """The registry agents are given: never empty (an explicitly empty ZYND_REGISTRY_URL means the default)."""
    return (url or "").strip() or DEFAULT_REGISTRY_URL


def entity_url(*, slug: str, port: int, domain: str, scheme: str, skip_caddy: bool) -> str:
    return f"http://localhost:{port}" if skip_caddy else f"{scheme}://{slug}.{domain}"


def render_env(
    user_env: Mapping[str, str],
    *,
    entity_type: str,
    registry_url: str,
    url: str,
    has_keypair: bool,
) -> dict[str, str]:
    """The user's values first; the deployer's own values win over them."""
    env = dict(user_env)
    owned = {
        "ZYND_REGISTRY_URL": registry_or_default(registry_url),
        "ZYND_SERVER_PORT": str(CONTAINER_PORT),
        "ZYND_WEBHOOK_PORT": str(CONTAINER_PORT),
        "ZYND_ENTITY_URL": url,
        "PORT": str(CONTAINER_PORT),
        # The root filesystem is read-only: no bytecode files, caches under /tmp.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
        "npm_config_cache": "/tmp/.npm",
    }
    if has_keypair:
        owned["ZYND_SERVICE_KEYPAIR_PATH" if entity_type == "service" else "ZYND_AGENT_KEYPAIR_PATH"] = (
            KEYPAIR_IN_CONTAINER
        )
    env.update(owned)
    return env


def rewrite_config(doc: Mapping[str, Any], *, registry_url: str) -> dict[str, Any]:
    out = dict(doc)
    out.update(
        server_port=CONTAINER_PORT,
        webhook_port=CONTAINER_PORT,
        server_host="0.0.0.0",
        registry_url=registry_or_default(registry_url),
        keypair_path=KEYPAIR_IN_CONTAINER,
    )
    return out
