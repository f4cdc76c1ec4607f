"""The schedule runtime on real Redis: owner-only keys, overlap locks, shared records, and two beat
processes that dispatch every tick exactly once, also across a SIGKILL of the leader."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from cli.main import main
from deployer.settings import Settings, load_settings
from tasks.app import housekeeping_queue
from tasks.schedules import (
    OwnedKey,
    leader_key,
    overlap_lock,
    record_failure,
    state_store,
)
from tests.support.stack import CeleryProcess, settings_env, wait_for

TTL_MS = 3000


@pytest.fixture
def sched_redis(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + "/7"


@pytest.fixture
def sched_settings(tmp_path: Path, sched_redis: str) -> Settings:
    return load_settings({
        "DEPLOYER_DATA_ROOT": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "REDIS_URL": sched_redis, "CELERY_BROKER_URL": sched_redis, "DEPLOYER_QUEUE": f"q-{uuid.uuid4().hex[:8]}",
        "SCHEDULE_LEADER_LOCK_TTL_MS": str(TTL_MS),
    })  # fmt: skip


def test_only_the_owner_extends_or_releases_a_key(sched_redis: str) -> None:
    client = redis.Redis.from_url(sched_redis)
    name = f"test:{uuid.uuid4().hex}"
    mine, theirs = OwnedKey(client, name, 5000), OwnedKey(client, name, 5000)
    assert mine.acquire() and not theirs.acquire()
    assert not theirs.extend() and not theirs.release()
    assert mine.holder() == mine.owner
    assert mine.extend() and 4000 < client.pttl(name) <= 5000
    assert mine.release() and theirs.acquire()
    theirs.release()


@pytest.mark.parametrize("with_redis", [True, False])
def test_an_overlapping_run_does_not_get_the_lock(sched_settings: Settings, with_redis: bool) -> None:
    settings = sched_settings if with_redis else load_settings({**settings_env(sched_settings), "REDIS_URL": ""})
    with overlap_lock(settings, "retention", 10_000) as first:
        assert first
        seen: list[bool] = []

        def second() -> None:
            with overlap_lock(settings, "retention", 10_000) as held:
                seen.append(held)

        t = threading.Thread(target=second)
        t.start()
        t.join()
        assert seen == [False]
    with overlap_lock(settings, "retention", 10_000) as again:
        assert again  # released once the first run ended


@pytest.mark.parametrize("with_redis", [True, False])
def test_schedule_records_survive_concurrent_writers(sched_settings: Settings, with_redis: bool) -> None:
    settings = sched_settings if with_redis else load_settings({**settings_env(sched_settings), "REDIS_URL": ""})
    store = state_store(settings)
    threads = [threading.Thread(target=lambda: [store.update("probe-health", lambda s: record_failure(s, "boom"))
                                                for _ in range(10)]) for _ in range(5)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = store.get("probe-health")
    assert state.failures == 50 and state.last_error == "boom"


def test_the_schedule_runtime_imports_neither_flask_nor_docker_nor_the_database() -> None:
    heavy = "('flask', 'docker', 'sqlalchemy', 'psycopg', 'werkzeug')"
    code = f"import sys, tasks.beat, tasks.leader; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout  # fmt: skip
    assert out.strip() == "[]"


def dispatches(client: redis.Redis, queue: str, task: str) -> list[float]:
    """Send times of queued `task` messages (beat gives drain-queue `expires` = send time + 5 s)."""
    times = []
    for raw in client.lrange(queue, 0, -1):
        headers = json.loads(raw)["headers"]
        if headers["task"] == task:
            times.append(datetime.fromisoformat(headers["expires"]).timestamp() - 5)
    return sorted(times)


def leader_of(beats: list[CeleryProcess]) -> CeleryProcess:
    (leader,) = [b for b in beats if b"lease acquired" in b.log_path.read_bytes()]
    return leader


def test_two_beats_dispatch_each_tick_once_and_the_other_takes_over_after_a_sigkill(
    sched_settings: Settings, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(sched_settings.redis_url)
    beats = [CeleryProcess(sched_settings, "beat", tmp_path / "logs") for _ in range(2)]
    try:
        wait_for(lambda: client.get(leader_key(sched_settings)), timeout=30, what="a leader")
        start = time.time()
        wait_for(lambda: time.time() - start >= 30, timeout=40, what="30 s of beats", interval=0.5)
        sent = [t for t in dispatches(client, housekeeping_queue(sched_settings), "deployer.drain_queue") if t >= start]
        assert 28 <= len(sent) <= 31, len(sent)  # a 1 s schedule over 30 s, from one beat only
        assert min(b - a for a, b in itertools.pairwise(sent)) > 0.5  # never twice for one tick

        leader = leader_of(beats)
        killed_at = time.time()
        os.killpg(leader.proc.pid, signal.SIGKILL)
        survivor = next(b for b in beats if b is not leader)
        wait_for(lambda: b"lease acquired" in survivor.log_path.read_bytes(), timeout=TTL_MS / 1000 + 5,
                 what="the other beat to take over")  # fmt: skip
        wait_for(lambda: len([t for t in dispatches(client, housekeeping_queue(sched_settings), "deployer.drain_queue")
                              if t > killed_at]) >= 5, timeout=15, what="dispatches after the takeover")  # fmt: skip
        times = dispatches(client, housekeeping_queue(sched_settings), "deployer.drain_queue")
        after = [t for t in times if t > killed_at]
        assert after[0] - killed_at <= TTL_MS / 1000 + 2  # taken over within the TTL (plus a tick)
        tail = [t for t in times if t > killed_at - 3]
        assert min(b - a for a, b in itertools.pairwise(tail)) > 0.5  # no doubles around the handover
    finally:
        for b in beats:
            b.stop()


def test_schedule_list_shows_the_leader_and_each_record_and_run_sends_one(
    sched_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(sched_settings)
    client = redis.Redis.from_url(sched_settings.redis_url)
    state_store(sched_settings).update("retention", lambda s: record_failure(s, "disk on fire"))
    client.set(leader_key(sched_settings), "host-a:1234")
    out = CliRunner().invoke(main, ["schedule", "list"], env=env)
    assert out.exit_code == 0, out.output
    assert "leader: host-a:1234" in out.output
    retention = next(line for line in out.output.splitlines() if line.startswith("retention"))
    assert "disk on fire" in retention and " 1 " in retention
    sent = CliRunner().invoke(main, ["schedule", "run", "reconcile-runtime"], env=env)
    assert sent.exit_code == 0, sent.output
    (raw,) = client.lrange(housekeeping_queue(sched_settings), 0, -1)
    headers = json.loads(raw)["headers"]
    assert (headers["task"], headers["schedule"]) == ("deployer.reconcile_runtime", "reconcile-runtime")
    bad = CliRunner().invoke(main, ["schedule", "run", "nope"], env=env)
    assert bad.exit_code != 0 and "no schedule 'nope'" in bad.output
