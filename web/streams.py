"""Live log streams (SSE and WebSocket share one event sequence).

The sequence: the backlog (the last 500 lines, or every line after the client's `after`), `ready`
with the last line number, the current `status`, then live lines and status changes, and `done` once
the deployment is terminal and its log has gone quiet. Line numbers are gap-free per deployment, so
the stream never repeats or skips one: a live batch is used when it continues exactly where the
client is, and anything else (a gap, a Redis reconnect, a quiet spell) is filled from the database.
Without Redis (embedded mode) the database is polled instead.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, select

from deployer.store.deployments import get_deployment, iso
from deployer.store.states import TERMINAL, Status
from deployer.store.tables import DEPLOYMENT_LOG as _log
from web.hub import Subscription

BACKLOG = 500
PAGE = 2000


@dataclass(frozen=True)
class Event:
    type: str  # log | ready | status | done | error | keepalive
    data: dict[str, Any]
    id: int | None = None


class LogSource(Protocol):
    def status(self) -> str: ...
    def lines_after(self, after: int, limit: int) -> list[dict[str, Any]]: ...
    def last_lines(self, count: int) -> list[dict[str, Any]]: ...


class DbSource:
    """Short reads only: a stream never holds a pooled connection while it waits."""

    def __init__(self, engine: Engine, deployment_id: str) -> None:
        self.engine, self.deployment_id = engine, deployment_id

    def status(self) -> str:
        return str(get_deployment(self.engine, self.deployment_id)["status"])

    def _select(self) -> Any:
        return select(_log.c.line_no, _log.c.stream, _log.c.text, _log.c.ts).where(
            _log.c.deployment_id == self.deployment_id
        )

    def lines_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        query = self._select().where(_log.c.line_no > after).order_by(_log.c.line_no).limit(limit)
        with self.engine.connect() as conn:
            return [_line(r) for r in conn.execute(query)]

    def last_lines(self, count: int) -> list[dict[str, Any]]:
        query = self._select().order_by(_log.c.line_no.desc()).limit(count)
        with self.engine.connect() as conn:
            return [_line(r) for r in reversed(conn.execute(query).all())]


def _line(r: Any) -> dict[str, Any]:
    return {"line_no": r.line_no, "stream": r.stream, "text": r.text, "ts": iso(r.ts)}


@dataclass(frozen=True)
class Timing:
    poll: float = 0.5  # without Redis: how often the database is read
    resync: float = 5.0  # with Redis: a database read after this long without a message (lost messages)
    keepalive: float = 15.0
    settle: float = 0.5  # after a terminal status: quiet this long before `done`


class LogStream:
    def __init__(self, source: LogSource, *, after: int | None, sub: Subscription | None,
                 timing: Timing = Timing(), clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.source, self.after, self.sub, self.timing, self.clock = source, after, sub, timing, clock
        self.last = 0
        self._last_read = 0.0
        self._seen_status: str | None = None

    def events(self) -> Iterator[Event]:
        yield from self._backlog()
        yield Event("ready", {"last_line": self.last})
        status = self.source.status()
        yield Event("status", {"status": status})
        if Status(status) in TERMINAL:
            yield from self._finish(status)
            return
        yield from self._live(status)

    def _backlog(self) -> Iterator[Event]:
        if self.after is None:
            lines = self.source.last_lines(BACKLOG)
            self.last = lines[0]["line_no"] - 1 if lines else 0
            yield from self._emit(lines)
            return
        self.last = max(0, self.after)
        yield from self._catch_up()

    def _catch_up(self) -> Iterator[Event]:
        while True:
            lines = self.source.lines_after(self.last, PAGE)
            yield from self._emit(lines)
            if len(lines) < PAGE:
                return

    def _emit(self, lines: list[dict[str, Any]]) -> Iterator[Event]:
        for line in lines:
            if line["line_no"] == self.last + 1:
                self.last += 1
                yield Event("log", line, line["line_no"])

    def _take(self, lines: list[dict[str, Any]]) -> Iterator[Event]:
        """A live batch: used when it continues the client's sequence; a gap is filled from the database."""
        fresh = [ln for ln in lines if ln["line_no"] > self.last]
        if fresh and fresh[0]["line_no"] != self.last + 1:
            yield from self._catch_up()
            fresh = [ln for ln in fresh if ln["line_no"] > self.last]
        yield from self._emit(fresh)

    def _wait(self, timeout: float) -> dict[str, Any] | None:
        timeout = max(0.0, timeout)
        if self.sub is None:
            time.sleep(timeout)  # polling mode: nothing to wake us; the next database read is the point
            return None
        try:
            return self.sub.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _live(self, status: str) -> Iterator[Event]:
        idle = self.timing.poll if self.sub is None else self.timing.resync
        self._last_read = last_sent = self.clock()
        while True:
            msg = self._wait(max(0.0, min(self._last_read + idle, last_sent + self.timing.keepalive) - self.clock()))
            if msg is not None and msg["type"] == "overflow":
                yield Event("error", {"message": f"client too slow: reconnect with after={self.last}"})
                return
            before = self.last
            self._seen_status = None
            yield from self._on_message(msg, idle)
            changed = self._seen_status is not None and self._seen_status != status
            if changed:
                status = str(self._seen_status)
                yield Event("status", {"status": status})
                if Status(status) in TERMINAL:
                    yield from self._finish(status)
                    return
            if self.last != before or changed:
                last_sent = self.clock()
            elif self.clock() - last_sent >= self.timing.keepalive:
                last_sent = self.clock()
                yield Event("keepalive", {})

    def _on_message(self, msg: dict[str, Any] | None, idle: float) -> Iterator[Event]:
        """Lines for one wake-up; a status seen meanwhile is left in `_seen_status`."""
        if msg is None or msg["type"] == "resync":
            if msg is not None or self.clock() - self._last_read >= idle:
                self._last_read = self.clock()
                yield from self._catch_up()
                self._seen_status = self.source.status()
        elif msg["type"] == "log":
            yield from self._take(msg["lines"])
        elif msg["type"] == "status":
            yield from self._catch_up()
            self._seen_status = str(msg["status"])

    def _finish(self, status: str) -> Iterator[Event]:
        """The last lines a dying container wrote may land just after its status: wait for quiet."""
        yield from self._catch_up()
        quiet_since = self.clock()
        while self.clock() - quiet_since < self.timing.settle:
            msg = self._wait(self.timing.settle - (self.clock() - quiet_since))
            before = self.last
            if msg is not None and msg["type"] == "log":
                yield from self._take(msg["lines"])
            elif msg is None or msg["type"] == "resync":
                yield from self._catch_up()
            if self.last != before:
                quiet_since = self.clock()
        yield Event("done", {"status": status, "last_line": self.last})


def sse_format(event: Event) -> str:
    if event.type == "keepalive":
        return ": keepalive\n\n"
    head = f"id: {event.id}\n" if event.id is not None else ""
    return f"{head}event: {event.type}\ndata: {json.dumps(event.data, separators=(',', ':'))}\n\n"


def ws_frame(event: Event) -> str:
    return json.dumps({"type": event.type, **event.data}, separators=(",", ":"))
