"""The entity id backfill once a deployment runs (docs/architecture.md#boot-pipeline): best effort, from the places
agents publish it.

- `/.well-known/agent-card.json`: `x-zynd.entityId` (the only place the real Python SDK 0.6.5 puts
  it), else a top-level `id` / `entity_id` / `agent_id`;
- `/.well-known/agent.json`: the same keys (older agents);
- `/health`: `entity_id` (the TypeScript SDK's health answer).

Every probe goes to the container's own loopback port, never follows a redirect, reads at most
`MAX_BYTES`, and all of them together keep to one deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from deployer.lifecycle.health import MAX_BODY_BYTES, read_json

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
HEALTH_PATH = "/health"
ID_KEYS = ("id", "entity_id", "agent_id")
MAX_BYTES = MAX_BODY_BYTES  # the cap every read of what a container serves keeps
DEADLINE_S = 3.0
PROBE_TIMEOUT_S = 1.0
MAX_ID = 200


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_ID]
    return None


def id_from_card(doc: Any) -> str | None:
    """`x-zynd.entityId` first (the reference's place), then the top-level keys."""
    if not isinstance(doc, dict):
        return None
    zynd = doc.get("x-zynd")
    if isinstance(zynd, dict) and (found := _text(zynd.get("entityId"))):
        return found
    for key in ID_KEYS:
        if found := _text(doc.get(key)):
            return found
    return None


def id_from_health(doc: Any) -> str | None:
    return _text(doc.get("entity_id")) if isinstance(doc, dict) else None


def _read(session: requests.Session, url: str, *, deadline: float, clock: Callable[[], float]) -> Any:
    remaining = deadline - clock()
    if remaining <= 0:
        return None
    return read_json(session, url, deadline_s=min(PROBE_TIMEOUT_S, remaining), max_bytes=MAX_BYTES, clock=clock)


def find_entity_id(
    session: requests.Session,
    base_url: str,
    *,
    deadline_s: float = DEADLINE_S,
    clock: Callable[[], float] = time.monotonic,
) -> str | None:
    deadline = clock() + deadline_s
    for path in CARD_PATHS:
        if found := id_from_card(_read(session, base_url + path, deadline=deadline, clock=clock)):
            return found
    return id_from_health(_read(session, base_url + HEALTH_PATH, deadline=deadline, clock=clock))
