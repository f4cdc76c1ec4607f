"""`deployer watch`: the watcher process, wired up and run until SIGINT or SIGTERM (one per Docker host)."""

from __future__ import annotations

import logging
import signal

from deployer.context import build_context
from deployer.settings import Settings
from tasks.kick import make_kicker
from traces.recorder import recorder_for
from traces.wiring import instrument_context
from watcher.loop import Watcher


def run(settings: Settings) -> None:
    """Build the context (traced when tracing is on), then watch until told to stop. Start-up
    reconciliation runs first; a signal ends the loop, which stops the tailers and returns."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    context = build_context(settings)
    instrument_context(context, recorder_for(settings))
    watcher = Watcher(context, kick=make_kicker(settings))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: watcher.stop_event.set())
    watcher.run()
