"""Celery beat that dispatches only while it holds the leader lease (docs/architecture.md#the-schedule-runtime).

Two beats may run (a rolling deploy, a second host for safety); only the lease holder dispatches.
The lease is renewed at ttl/2; a beat that fails to renew, or whose last renewal is older than 90 %
of the TTL, stops dispatching at once and says so, and another beat takes over when the key expires.
A schedule that keeps failing is held back (`backoff_delay`), and every dispatch records its next run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery.beat import PersistentScheduler, ScheduleEntry

from deployer.settings import Settings
from tasks.schedules import LeaderLease, OwnedKey, backoff_delay, leader_key, state_store

log = logging.getLogger(__name__)


class AlwaysLeader:
    """Embedded mode (no Redis): one beat on one host by construction."""

    leader = True

    def tick(self) -> bool:
        return True

    def release(self) -> None:
        return None


class LeaderScheduler(PersistentScheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.settings: Settings = kwargs["app"].conf.deployer_settings
        self.store = state_store(self.settings)
        self.ttl_ms = self.settings.schedule_leader_lock_ttl_ms
        if self.settings.redis_url:
            client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
            key = OwnedKey(client, leader_key(self.settings), self.ttl_ms)
            self.lease: LeaderLease | AlwaysLeader = LeaderLease(key, on_change=self._announce)
        else:
            self.lease = AlwaysLeader()
        super().__init__(*args, **kwargs)

    def _announce(self, leader: bool) -> None:
        if leader:
            log.warning("beat leader lease acquired (%s): dispatching", leader_key(self.settings))
        else:
            log.warning("beat leader lease lost or released: dispatching stopped")

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.lease.tick():
            return float(min(1.0, self.ttl_ms / 4000))  # try for the lease again soon
        next_in = float(super().tick(*args, **kwargs))
        return float(min(next_in, self.ttl_ms / 4000))  # wake to renew well before ttl/2 passes

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if not self.lease.tick():  # the lease may have lapsed during this tick's earlier sends
            return
        state = self.store.get(entry.name)
        hold = backoff_delay(state.failures, initial=self.settings.schedule_backoff_initial_sec,
                             factor=2.0, cap=self.settings.schedule_backoff_max_sec, jitter=0.1)  # fmt: skip
        now = time.time()
        if hold and state.last_run is not None and now < state.last_run + hold:
            log.info("%s held back %.0f s after %d failures", entry.name, hold, state.failures)
            return
        entry.options = {**entry.options, "headers": {"schedule": entry.name}}
        super().apply_entry(entry, producer=producer)
        every = getattr(entry.schedule, "seconds", None)
        self.store.update(entry.name, lambda s: setattr(s, "next_run", now + every if every else None))

    def close(self) -> None:
        self.lease.release()
        super().close()
