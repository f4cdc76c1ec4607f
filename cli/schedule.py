"""`deployer schedule list|run`: the schedule runtime's record, and a run on demand."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import redis

from beat_schedule import beat_schedule
from deployer.settings import Settings
from tasks.schedules import leader_key, state_store


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _leader(settings: Settings) -> str:
    if not settings.redis_url:
        return "embedded (single beat, no lease)"
    holder = redis.Redis.from_url(settings.redis_url, socket_timeout=2).get(leader_key(settings))
    if not holder:
        return "none (no beat holds the lease)"
    return holder.decode() if isinstance(holder, bytes) else str(holder)


def list_schedules(settings: Settings) -> None:
    store = state_store(settings)
    click.echo(f"leader: {_leader(settings)}")
    click.echo(f"{'NAME':<18} {'EVERY':>7}  {'LAST RUN':<19}  {'LAST SUCCESS':<19}  {'NEXT RUN':<19}  "
               f"{'FAILS':>5} {'SKIPS':>5}  LAST ERROR")  # fmt: skip
    for name, entry in beat_schedule(settings).items():
        s = store.get(name)
        click.echo(f"{name:<18} {entry['schedule']:>6.0f}s  {_when(s.last_run):<19}  {_when(s.last_success):<19}  "
                   f"{_when(s.next_run):<19}  {s.failures:>5} {s.skipped:>5}  {s.last_error or '-'}")  # fmt: skip


def run_schedule(settings: Settings, name: str) -> str:
    from tasks.app import base_app

    entries = beat_schedule(settings)
    if name not in entries:
        raise click.ClickException(f"no schedule {name!r}; one of: {', '.join(entries)}")
    result = base_app(settings).send_task(entries[name]["task"], headers={"schedule": name})
    return str(result.id)
