"""Probing what a container serves: a pure schedule of probe delays and thin, bounded HTTP reads.

A container is untrusted and the prober sits on the host network, so every read here refuses
redirects (a `302 http://127.0.0.1:2019/…` would turn the prober against the host's own services),
reads at most a few KiB, and keeps an overall deadline (per-read timeouts alone let a trickled body
hold a probe pass for as long as the container likes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

PROBE_TIMEOUT_S = 2.0
MAX_BODY_BYTES = 16 * 1024


def boot_delays(first: float = 0.005, factor: float = 1.5, cap: float = 0.5) -> Iterator[float]:
    """Short gaps first (most agents answer within a few hundred ms), then backing off to `cap`."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)


def probe(session: requests.Session, url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """200 from `url` itself (no redirect followed, no body read) within `timeout`."""
    try:
        with session.get(url, timeout=timeout, allow_redirects=False, stream=True) as resp:
            return resp.status_code == 200
    except requests.RequestException:
        return False


def read_json(session: requests.Session, url: str, *, deadline_s: float = PROBE_TIMEOUT_S,
              max_bytes: int = MAX_BODY_BYTES, clock: Callable[[], float] = time.monotonic) -> Any:  # fmt: skip
    """The JSON body of a 200 from `url`, or None: no redirects, at most `max_bytes`, all within
    `deadline_s` however slowly the body comes."""
    end = clock() + deadline_s
    try:
        with session.get(url, timeout=deadline_s, allow_redirects=False, stream=True) as resp:
            if resp.status_code != 200:
                return None
            body = bytearray()
            while len(body) <= max_bytes:
                if clock() > end:
                    return None
                chunk = resp.raw.read1(4096)  # what has arrived, not a full 4 KiB: a trickle cannot stall us
                if not chunk:
                    return json.loads(bytes(body))
                body += chunk
            return None
    except (requests.RequestException, ValueError, OSError):
        return None


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
