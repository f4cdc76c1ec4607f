"""`deployer watch`: the watcher process, wired up and run until SIGINT or SIGTERM (one per Docker host)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

from deployer.context import build_context
from deployer.settings import Settings
from traces.recorder.core import recorder_for
from traces.recorder.wiring import instrument_context
from watcher.loop import Watcher


def run(settings: Settings, *, kick: Callable[[str], None]) -> None:
    """Build the context (traced when tracing is on), then watch until told to stop. Start-up
    reconciliation runs first; a signal ends the loop, which stops the tailers and returns. `kick`
    asks the workers to run a named task now (the caller wires it: the watcher never imports Celery)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    context = build_context(settings)
    instrument_context(context, recorder_for(settings))
    watcher = Watcher(context, kick=kick)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: watcher.stop_event.set())
    watcher.run()
