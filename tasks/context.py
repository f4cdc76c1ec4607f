"""One lifecycle `Context` per worker process, built on first use (after the fork, never before)."""

from __future__ import annotations

import threading

from celery import Celery

from deployer.context import build_context
from deployer.lifecycle.context import Context
from traces.recorder.wiring import instrument_context

_lock = threading.Lock()
_contexts: dict[int, Context] = {}


def context_for(app: Celery) -> Context:
    with _lock:
        ctx = _contexts.get(id(app))
        if ctx is None:
            ctx = _contexts[id(app)] = build_context(app.conf.deployer_settings)
            instrument_context(ctx, app.conf.get("deployer_recorder"))
        return ctx


def reset() -> None:
    """Forget contexts (a forked child must not share its parent's connections)."""
    with _lock:
        _contexts.clear()
