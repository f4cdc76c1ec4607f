"""Asking the workers to run a named task now, from processes that do not run tasks (the web app)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from celery import Celery

from deployer.settings import Settings

log = logging.getLogger(__name__)


def make_kicker(settings: Settings) -> Callable[[str], None]:
    """`kick("drain_queue")` sends `deployer.drain_queue`. A broker hiccup is logged, never raised:
    beat runs the same task every second as a safety net."""
    lock = threading.Lock()
    holder: list[Celery] = []

    def kick(name: str) -> None:
        with lock:
            if not holder:
                from tasks.worker import create_celery

                holder.append(create_celery(settings))
        try:
            holder[0].send_task(f"deployer.{name}")
        except Exception:
            log.warning("could not kick %s; beat will run it", name, exc_info=True)

    return kick
