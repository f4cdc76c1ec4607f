"""The watcher's loop: the long-lived streams of one Docker host, outside Celery.

- crash watcher: Docker `die`/`oom` events of deployment containers → `handle_exit`; when the event
  stream drops it reconnects and reconciles what it may have missed;
- log tailers: one per deployment container, resumed from the stored cursor after a restart;
- start-up reconciliation, and the restart policy's due restarts, checked every second.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from deployer.context import Context
from deployer.errors import DeployerError
from deployer.store.deployments import request_restart
from deployer.store.states import Status
from deployer.store.tables import DEPLOYMENT as _dep
from deployer.supervision.crashes import handle_exit
from deployer.supervision.reconcile import reconcile_runtime
from watcher.events import Exits, event_filters
from watcher.restarts import due_restarts
from watcher.tailer import Tailer

log = logging.getLogger(__name__)
HEARTBEAT = Path(tempfile.gettempdir()) / "deployer-watcher.alive"  # touched every tick of the main loop
TAILED = [Status.STARTING, Status.HEALTH_CHECKING, Status.REGISTERING_ROUTE, Status.RUNNING, Status.UNHEALTHY]


class Watcher:
    def __init__(self, ctx: Context, *, kick: Callable[[str], None], tick: float = 1.0) -> None:
        self.ctx, self.kick, self.tick = ctx, kick, tick
        self.stop_event = threading.Event()
        self.tailers: dict[str, Tailer] = {}
        self.finished: set[tuple[str, str]] = set()  # (deployment, container) whose log ended cleanly
        self.exits = Exits()
        self._events: Any = None

    # ---- crash watcher ---------------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        ex = self.exits.on_event(event)
        if ex is None:
            return
        outcome = handle_exit(self.ctx, ex, drain_output=lambda: self._drain(ex.deployment_id))
        log.info("container of %s died (exit %s): %s", ex.deployment_id, ex.exit_code, outcome)

    def _drain(self, deployment_id: str) -> None:
        tailer = self.tailers.get(deployment_id)
        if tailer is not None:
            tailer.join(timeout=2)

    def _watch_events(self) -> None:
        since: float | None = None
        filters = event_filters(self.ctx.installation)
        while not self.stop_event.is_set():
            try:
                self._events = self.ctx.docker.events(decode=True, filters=filters, since=since)
                if since is not None:
                    try:
                        reconcile_runtime(self.ctx)  # the daemon's buffer is finite: look at what is there
                    except Exception:
                        log.exception("reconciliation after the event stream dropped failed")
                for event in self._events:
                    since = float(event.get("timeNano", 0)) / 1e9 or time.time()
                    try:
                        self._on_event(event)
                    except Exception:
                        log.exception("handling %s failed", event.get("id"))
            except Exception:
                if self.stop_event.is_set():
                    return
                log.warning("docker event stream dropped; reconnecting", exc_info=True)
            since = since or time.time()
            self.stop_event.wait(0.5)

    # ---- tailers and periodic checks --------------------------------------------------------------

    def _sync_tailers(self) -> None:
        with self.ctx.engine.connect() as conn:
            rows = conn.execute(
                select(_dep.c.id, _dep.c.container_id, _dep.c.log_cursor_out_ns, _dep.c.log_cursor_err_ns).where(
                    _dep.c.status.in_([s.value for s in TAILED]), _dep.c.container_id.is_not(None)
                )
            ).all()
        for r in rows:
            current = self.tailers.get(r.id)
            if current is not None and current.alive() and current.container_id == r.container_id:
                continue
            if current is not None and current.ended_cleanly and current.container_id == r.container_id:
                self.finished.add((r.id, r.container_id))
            if (r.id, r.container_id) in self.finished:
                continue
            tailer = Tailer(self.ctx, r.id, r.container_id, (r.log_cursor_out_ns, r.log_cursor_err_ns))
            self.tailers[r.id] = tailer
            tailer.start()

    def _restart_due(self) -> None:
        for deployment_id in due_restarts(self.ctx):
            try:
                request_restart(self.ctx.engine, deployment_id, max_active=self.ctx.settings.max_active,
                                now=self.ctx.now, on_transition=self.ctx.on_transition)  # fmt: skip
                self.kick("drain_queue")
            except DeployerError as exc:
                log.info("restart of %s postponed: %s", deployment_id, exc.message)

    def step(self) -> None:
        for fn in (self._sync_tailers, self._restart_due):
            try:
                fn()
            except Exception:
                log.exception("%s failed", fn.__name__)

    def run(self) -> None:
        try:
            log.info("start-up reconciliation: %s", reconcile_runtime(self.ctx))
        except Exception:  # Docker or the database unreachable for a moment: beat reconciles every 30 s
            log.exception("start-up reconciliation failed; the periodic one will retry")
        events = threading.Thread(target=self._watch_events, name="docker-events", daemon=True)
        events.start()
        while not self.stop_event.wait(self.tick):
            self.step()
            HEARTBEAT.touch()  # the compose health check reads its age
        self.shutdown()

    def shutdown(self) -> None:
        self.stop_event.set()
        if self._events is not None:
            self._events.close()
        for tailer in self.tailers.values():
            tailer.stop()
        deadline = time.monotonic() + 3  # what is stored is stored; unstored lines are re-read next start
        for tailer in self.tailers.values():
            tailer.join(timeout=max(0.0, deadline - time.monotonic()))
