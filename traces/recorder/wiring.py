"""Attaching the recorder's watchers to the deployer's processes, in one place per kind of process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from traces.recorder.core import Recorder
from traces.recorder.watchers import event_watcher, install_logging, install_redis, install_requests, install_sqlalchemy


def chain(*callbacks: Callable[[str, Any], None] | None) -> Callable[[str, Any], None] | None:
    present = [c for c in callbacks if c is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def both(deployment_id: str, status: Any) -> None:
        for c in present:
            c(deployment_id, status)

    return both


def instrument_process(rec: Recorder | None) -> None:
    """What is watched process-wide (the web app; each worker process and the watcher, with their
    Context): warnings and errors logged, and every command of every Redis client the process makes
    (publisher, schedule state and locks, Celery's Redis transport). Call it with the process's one
    recorder: a second recorder would record each command again. Beat is slim and not traced."""
    if rec is None:
        return
    install_logging(rec)
    install_redis(rec)


def instrument_engine(engine: Any, rec: Recorder | None) -> None:
    """An engine's queries and the rows its statements and ORM sessions create, update and delete."""
    if rec is not None:
        install_sqlalchemy(engine, rec)


def instrument_context(ctx: Any, rec: Recorder | None) -> None:
    """A lifecycle Context (worker or watcher): its queries and rows, HTTP calls (health probes, Caddy
    admin), every deployment transition it makes, and the process-wide hooks."""
    if rec is None:
        return
    instrument_engine(ctx.engine, rec)
    install_requests(ctx.http, rec)
    if getattr(ctx, "caddy", None) is not None:
        install_requests(ctx.caddy.http, rec)
    ctx.on_transition = chain(ctx.on_transition, event_watcher(rec))
    instrument_process(rec)
