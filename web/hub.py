"""Fan-out of live log batches and status events: one Redis subscriber per web process.

Every stream registers a bounded queue for its deployment; the one listener thread (started with the
first subscriber) hands each message to the queues of that deployment. A queue that is full marks
its subscription overflowed instead of blocking: a slow client can never stall the others, and its
stream tells it so and closes (the client resumes from its last line). After the Redis connection
drops and comes back, every subscription gets a RESYNC marker so its stream re-reads the database
for whatever was published meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from deployer.store.events import STATUS_CHANNEL

log = logging.getLogger(__name__)
LOGS_PATTERN = "deployer:logs:*"
STATUS_PATTERN = f"{STATUS_CHANNEL}:*"
RESYNC: dict[str, Any] = {"type": "resync"}


@dataclass(eq=False)
class Subscription:
    deployment_id: str
    queue: queue.Queue[dict[str, Any]]
    overflowed: bool = False
    hub: Hub | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.hub is not None:
            self.hub.unsubscribe(self)


class Hub:
    def __init__(self, redis_url: str, *, queue_size: int = 2000) -> None:
        self.redis_url, self.queue_size = redis_url, queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = False
        self.client_name = f"deployer-hub-{os.getpid()}-{id(self):x}"  # visible in Redis CLIENT LIST

    def subscribe(self, deployment_id: str, *, wait: float = 5.0) -> Subscription:
        """Registers the queue and, for the first subscriber, starts the listener and waits until it listens."""
        sub = Subscription(deployment_id, queue.Queue(maxsize=self.queue_size), hub=self)
        with self._lock:
            self._subs.setdefault(deployment_id, set()).add(sub)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="stream-hub", daemon=True)
                self._thread.start()
        self._ready.wait(wait)  # without Redis the stream still works: its periodic re-reads cover it
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.deployment_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.deployment_id]

    def subscribers(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def stop(self) -> None:
        self._stopping = True

    def dispatch(self, channel: str, message: dict[str, Any]) -> None:
        deployment_id = channel.rsplit(":", 1)[-1]
        with self._lock:
            targets = list(self._subs.get(deployment_id, ()))
        for sub in targets:
            self._offer(sub, message)

    def _offer(self, sub: Subscription, message: dict[str, Any]) -> None:
        if sub.overflowed:
            return
        try:
            sub.queue.put_nowait(message)
        except queue.Full:
            sub.overflowed = True
            # wake its stream so it can say so and close: make room for one marker
            try:
                sub.queue.get_nowait()
                sub.queue.put_nowait({"type": "overflow"})
            except (queue.Empty, queue.Full):
                pass

    def _resync_all(self) -> None:
        with self._lock:
            targets = [s for subs in self._subs.values() for s in subs]
        for sub in targets:
            self._offer(sub, RESYNC)

    def _listen(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2, health_check_interval=10,
                                              client_name=self.client_name)  # fmt: skip
                with client.pubsub(ignore_subscribe_messages=True) as pubsub:  # type: ignore[no-untyped-call]
                    pubsub.psubscribe(LOGS_PATTERN, STATUS_PATTERN)
                    pubsub.get_message(timeout=1.0)  # the psubscribe confirmations
                    if self._ready.is_set():
                        self._resync_all()  # a reconnect: what was published meanwhile is only in the database
                    self._ready.set()
                    backoff = 0.5
                    while not self._stopping:
                        msg = pubsub.get_message(timeout=1.0)
                        if msg is not None and msg.get("type") == "pmessage":
                            self.dispatch(_text(msg["channel"]), json.loads(msg["data"]))
                client.close()
            except (redis.RedisError, OSError, ValueError):
                log.warning("stream hub lost Redis; reconnecting in %.1f s", backoff, exc_info=True)
                self._ready.set()  # streams fall back to their periodic database reads meanwhile
                time.sleep(backoff)
                backoff = min(10.0, backoff * 2)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
