"""The schedule runtime's safety (docs/architecture.md#the-schedule-runtime): a leader lease so only one beat
dispatches, overlap locks so a long task never runs twice at once, and each schedule's record and failure backoff.

Decide (pure): `backoff_delay`, `LeaseClock` (when to renew, whether the lease is still ours).
Apply: Redis keys with an owner token — `SET NX PX` to take, and Lua compare-and-extend /
compare-and-delete so only the owner extends or releases (a lease that expired and was taken by
another beat is never touched by the old owner).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import redis

from deployer.settings import Settings


# Keys carry the Celery queue name, so installations sharing one Redis keep separate leaders.
def leader_key(settings: Settings) -> str:
    return f"deployer:{settings.queue}:schedule:leader"


def lock_key(settings: Settings, name: str) -> str:
    return f"deployer:{settings.queue}:lock:{name}"


def state_prefix(settings: Settings) -> str:
    return f"deployer:{settings.queue}:schedule:state:"


_IF_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then return {} else return 0 end"
_EXTEND = _IF_OWNER.format("redis.call('pexpire', KEYS[1], ARGV[2])")
_RELEASE = _IF_OWNER.format("redis.call('del', KEYS[1])")


def owner_token() -> str:
    return f"{socket.gethostname()}:{secrets.token_hex(8)}"


class OwnedKey:
    """A Redis key held by an owner token: take, extend and release only as that owner."""

    def __init__(self, client: redis.Redis, key: str, ttl_ms: int, owner: str | None = None) -> None:
        self.client, self.key, self.ttl_ms = client, key, ttl_ms
        self.owner = owner or owner_token()
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    def extend(self) -> bool:
        return bool(self._extend(keys=[self.key], args=[self.owner, self.ttl_ms]))

    def release(self) -> bool:
        return bool(self._release(keys=[self.key], args=[self.owner]))

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


@dataclass
class LeaseClock:
    """When a lease holder must renew (at ttl/2) and until when it may still act on its last renewal."""

    ttl_ms: int
    renewed_at: float | None = None  # monotonic seconds of the last successful take or renewal

    def renew_due(self, now: float) -> bool:
        return self.renewed_at is None or now - self.renewed_at >= self.ttl_ms / 2000

    def valid(self, now: float) -> bool:
        # A margin under the TTL: clock drift between us and Redis must not let two leaders overlap.
        return self.renewed_at is not None and now - self.renewed_at < self.ttl_ms * 0.9 / 1000


class LeaderLease:
    """The beat leader's lease. `tick()` says whether this process may dispatch right now."""

    def __init__(self, key: OwnedKey, *, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool], None] = lambda _leader: None) -> None:  # fmt: skip
        self.key, self.clock, self.on_change = key, clock, on_change
        self.lease = LeaseClock(key.ttl_ms)
        self.leader = False

    def tick(self) -> bool:
        now = self.clock()
        if self.leader and self.lease.renew_due(now):
            ok = _safe(self.key.extend)
            self.lease.renewed_at = now if ok else self.lease.renewed_at
            if not ok or not self.lease.valid(now):
                self._set(False)
        if not self.leader and self.lease.renew_due(now) and _safe(self.key.acquire):
            self.lease.renewed_at = now
            self._set(True)
        if self.leader and not self.lease.valid(self.clock()):
            self._set(False)
        return self.leader

    def release(self) -> None:
        if self.leader:
            _safe(self.key.release)
            self._set(False)

    def _set(self, leader: bool) -> None:
        if leader != self.leader:
            self.leader = leader
            if not leader:
                self.lease.renewed_at = None
            self.on_change(leader)


def _safe(call: Callable[[], bool]) -> bool:
    try:
        return call()
    except redis.RedisError:
        return False


def backoff_delay(failures: int, *, initial: float, factor: float, cap: float, jitter: float = 0.0,
                  rng: Callable[[], float] = random.random) -> float:  # fmt: skip
    """Seconds to hold a schedule back after `failures` consecutive failures: initial * factor^(n-1),
    capped, plus up to `jitter` of itself at random (0 failures: no delay)."""
    if failures <= 0:
        return 0.0
    delay = min(cap, initial * factor ** (failures - 1))
    return delay * (1 + jitter * rng())


@dataclass
class ScheduleState:
    last_run: float | None = None  # epoch seconds
    last_success: float | None = None
    last_error: str | None = None
    next_run: float | None = None
    failures: int = 0
    skipped: int = 0
    last_skipped: float | None = None


class StateStore(Protocol):
    def get(self, name: str) -> ScheduleState: ...
    def update(self, name: str, change: Callable[[ScheduleState], None]) -> ScheduleState: ...


class RedisStateStore:
    """Each schedule's record, in Redis (shared by the beat, every worker and the CLI)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def get(self, name: str) -> ScheduleState:
        raw = self.client.get(self.prefix + name)
        return ScheduleState(**json.loads(raw)) if raw else ScheduleState()

    def update(self, name: str, change: Callable[[ScheduleState], None]) -> ScheduleState:
        key = self.prefix + name
        with self.client.pipeline() as pipe:
            while True:  # optimistic: beat and workers may write the same record
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    state = ScheduleState(**json.loads(raw)) if raw else ScheduleState()
                    change(state)
                    pipe.multi()
                    pipe.set(key, json.dumps(asdict(state)))
                    pipe.execute()
                    return state
                except redis.WatchError:
                    continue


def record_start(state: ScheduleState, now: float) -> None:
    state.last_run = now


def record_success(state: ScheduleState, now: float) -> None:
    state.last_success, state.failures, state.last_error = now, 0, None


def record_failure(state: ScheduleState, message: str) -> None:
    state.failures += 1
    state.last_error = message[:500]


def record_skip(state: ScheduleState, now: float) -> None:
    state.skipped += 1
    state.last_skipped = now


def as_row(name: str, state: ScheduleState) -> dict[str, Any]:
    return {"name": name, **asdict(state)}


class FileStateStore:
    """The embedded mode's records (`deployer up`, no Redis): one JSON file, updated under a file lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            yield data
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)

    def get(self, name: str) -> ScheduleState:
        with self._locked() as data:
            return ScheduleState(**data.get(name, {}))

    def update(self, name: str, change: Callable[[ScheduleState], None]) -> ScheduleState:
        with self._locked() as data:
            state = ScheduleState(**data.get(name, {}))
            change(state)
            data[name] = asdict(state)
            return state


def state_store(settings: Settings) -> StateStore:
    if settings.redis_url:
        return RedisStateStore(redis.Redis.from_url(settings.redis_url, socket_timeout=5), state_prefix(settings))
    return FileStateStore(Path(settings.data_root) / "schedules" / "state.json")


@contextlib.contextmanager
def overlap_lock(settings: Settings, name: str, ttl_ms: int) -> Iterator[bool]:
    """Yields whether this run holds `name`'s lock; a run that does not should skip its work.

    Redis `SET NX PX` with an owner token (the TTL outlives the task's hard time limit, so a killed
    run's lock expires by itself); without Redis, a non-blocking file lock on this host."""
    if settings.redis_url:
        key = OwnedKey(redis.Redis.from_url(settings.redis_url, socket_timeout=5), lock_key(settings, name), ttl_ms)
        held = key.acquire()
        try:
            yield held
        finally:
            if held:
                key.release()
        return
    path = Path(settings.data_root) / "schedules" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
