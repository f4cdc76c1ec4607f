"""Attaching the recorder's watchers to the deployer's processes, in one place per kind of process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from traces.recorder import Recorder
from traces.watchers import event_watcher, install_logging, install_requests, install_sqlalchemy


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


def instrument_context(ctx: Any, rec: Recorder | None) -> None:
    """A lifecycle Context (worker or watcher): its queries, HTTP calls (health probes, Caddy admin)
    and every deployment transition it makes."""
    if rec is None:
        return
    install_sqlalchemy(ctx.engine, rec)
    install_requests(ctx.http, rec)
    if getattr(ctx, "caddy", None) is not None:
        install_requests(ctx.caddy.http, rec)
    ctx.on_transition = chain(ctx.on_transition, event_watcher(rec))
    install_logging(rec)
