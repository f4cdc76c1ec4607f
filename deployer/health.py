"""Probing `/health`: a pure schedule of probe delays and a thin HTTP probe."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import requests

PROBE_TIMEOUT_S = 2.0


def boot_delays(first: float = 0.005, factor: float = 1.5, cap: float = 0.5) -> Iterator[float]:
    """Short gaps first (most agents answer within a few hundred ms), then backing off to `cap`."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)


def probe(session: requests.Session, url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    try:
        return session.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_healthy(
    url: str,
    *,
    timeout_ms: int,
    alive: Callable[[], bool],
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Probe until 200 ("healthy"), the container dies ("died") or the time is up ("timeout")."""
    http = session or requests.Session()
    deadline = clock() + timeout_ms / 1000
    for delay in boot_delays():
        remaining = deadline - clock()
        if remaining <= 0:
            return "timeout"
        if probe(http, url, timeout=min(PROBE_TIMEOUT_S, max(remaining, 0.05))):
            return "healthy"
        if not alive():
            return "died"
        sleep(min(delay, max(deadline - clock(), 0)))
    return "timeout"  # pragma: no cover - boot_delays never ends
