"""Status events and live log batches on Redis pub/sub, for the web layer to push to clients.

Channels: `deployer:status` (every transition), `deployer:status:<id>` and `deployer:logs:<id>`.
Publishing is best effort: the database is the record; a lost message is recovered by re-reading it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from deployer.store.states import Status

log = logging.getLogger(__name__)
STATUS_CHANNEL = "deployer:status"


def status_channel(deployment_id: str) -> str:
    return f"{STATUS_CHANNEL}:{deployment_id}"


def logs_channel(deployment_id: str) -> str:
    return f"deployer:logs:{deployment_id}"


class Publisher:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def _publish(self, channel: str, payload: dict[str, Any]) -> None:
        try:
            self.redis.publish(channel, json.dumps(payload, default=str))
        except redis.RedisError:
            log.warning("could not publish on %s", channel, exc_info=True)

    def status(self, deployment_id: str, status: Status) -> None:
        payload = {"type": "status", "id": deployment_id, "status": str(status), "ts": datetime.now(UTC).isoformat()}
        self._publish(STATUS_CHANNEL, payload)
        self._publish(status_channel(deployment_id), payload)

    def log_batch(self, deployment_id: str, lines: Sequence[dict[str, Any]]) -> None:
        self._publish(logs_channel(deployment_id), {"type": "log", "id": deployment_id, "lines": list(lines)})


def publisher_for(redis_url: str) -> Publisher | None:
    return Publisher(redis_url) if redis_url else None
