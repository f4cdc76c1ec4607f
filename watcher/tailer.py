"""Log tailers: a container's stdout/stderr into `deployment_log`, each line once, in order.

Which lines a read yields, and which to drop because they come again, is decided in `watcher.frames`.
Here: a reader thread on Docker's log stream and a writer that inserts batches and moves the cursor in
the same transaction, so a crash anywhere loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from sqlalchemy import update

from deployer.context import Context
from deployer.lifecycle import dockerapi
from deployer.store.loglines import append_lines, append_system
from deployer.store.tables import DEPLOYMENT as _dep
from watcher.chunked import body_reader
from watcher.frames import (
    Cursor,
    Line,
    Sequencer,
    admitted_lines,
    cursor_after,
    read_frame_chunks,
    read_frames,
    since_for,
    split_payload,
)
from watcher.logbudget import LineBudget

log = logging.getLogger(__name__)
BATCH_LINES = 5000
BATCH_SECONDS = 0.1
DROP_REPORT_EVERY_S = 1.0


def store(ctx: Context, deployment_id: str, lines: list[Line], cursor: Cursor) -> Cursor:
    new_cursor = cursor_after(lines, cursor)
    with ctx.engine.begin() as conn:
        last = append_lines(conn, deployment_id, [(ln.stream, ln.text, ln.ts) for ln in lines])
        conn.execute(
            update(_dep)
            .where(_dep.c.id == deployment_id)
            .values(log_cursor_out_ns=new_cursor[0], log_cursor_err_ns=new_cursor[1])
        )
    if ctx.publisher is not None:
        first = last - len(lines) + 1
        ctx.publisher.log_batch(deployment_id, [
            {"line_no": first + i, "stream": ln.stream, "text": ln.text, "ts": ln.ts} for i, ln in enumerate(lines)
        ])  # fmt: skip
    return new_cursor


class Tailer:
    """Follows one container's output into the database: a reader thread and a writer thread."""

    def __init__(self, ctx: Context, deployment_id: str, container_id: str, cursor: Cursor) -> None:
        self.ctx, self.deployment_id, self.container_id = ctx, deployment_id, container_id
        self.cursor = cursor
        self.lines: queue.Queue[list[Line] | None] = queue.Queue(maxsize=256)  # chunks of up to ~64 KiB
        self.response: Any = None
        self.ended_cleanly = False
        self.failed = False
        self.stopping = False
        self.last_frame_at = time.monotonic()
        self.stored = 0
        self.budget = LineBudget(ctx.settings.log_rate_lines, ctx.settings.log_burst_lines)
        self._dropped_lock = threading.Lock()
        self._reported_at = 0.0
        self._reader = threading.Thread(target=self._read, name=f"tail-r-{deployment_id[:8]}", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"tail-w-{deployment_id[:8]}", daemon=True)

    def start(self) -> None:
        self._reader.start()
        self._writer.start()

    def alive(self) -> bool:
        return self._writer.is_alive()

    def join(self, timeout: float) -> None:
        self._writer.join(timeout)

    def stop(self) -> None:
        """Unblock the reader: its stream is cancelled under it (closing the response would leave a blocking
        read waiting)."""
        self.stopping = True
        self._cut()

    def _put(self, item: list[Line] | None) -> bool:
        while True:
            try:
                self.lines.put(item, timeout=0.5)
                return True
            except queue.Full:
                if self.failed:
                    return False

    def _request(self, since: int, follow: bool) -> Any:
        return dockerapi.open_log_stream(self.ctx.docker, self.container_id, since_ns=since, follow=follow)

    def _stream(self, sequencer: Sequencer, *, follow: bool) -> None:
        since = since_for((sequencer.last["stdout"], sequencer.last["stderr"]))
        partial: dict[int, bytes] = {}
        self.response = self._request(since, follow)
        for frames in read_frame_chunks(body_reader(self.response)):
            self.last_frame_at = time.monotonic()
            fresh = admitted_lines(frames, partial, sequencer)
            if fresh and self.budget.rate:
                with self._dropped_lock:
                    del fresh[self.budget.take(len(fresh), time.monotonic()) :]
                if not fresh and not self._put([]):  # all dropped: wakes the writer to report it
                    raise RuntimeError("the writer failed")
            if fresh and not self._put(fresh):
                raise RuntimeError("the writer failed")

    def _newer_exists(self, sequencer: Sequencer) -> bool:
        """Whether Docker has lines the follow stream has not delivered (a plain read, no follow)."""
        probe = Sequencer((sequencer.last["stdout"], sequencer.last["stderr"]))
        seen = [v for v in sequencer.last.values() if v]
        resp = self._request(min(seen) if seen else 0, follow=False)
        try:
            partial: dict[int, bytes] = {}
            for stream_id, payload in read_frames(body_reader(resp)):
                if any(probe.admit(ln.ts_ns, ln.stream) for ln in split_payload(stream_id, payload, partial)):
                    return True
            return False
        finally:
            resp.close()

    def _watchdog(self, sequencer: Sequencer, following: threading.Event) -> None:
        """Docker 20.10's follow reader can stall or stop at a json-file rotation while the container
        keeps writing. After a silence (checked at 2, 4, 8 … 60 s) look with a plain read; if there is
        more, cut the follow so the reader catches up and follows again."""
        wait = 2.0
        while following.is_set() and not self.stopping:
            time.sleep(0.5)
            if time.monotonic() - self.last_frame_at < wait:
                continue
            try:
                stalled = self._newer_exists(sequencer)
            except Exception:
                stalled = False
            if stalled:
                log.info("follow stream of %s stalled; catching up", self.deployment_id)
                self._cut()
                return
            self.last_frame_at, wait = time.monotonic(), min(60.0, wait * 2)

    def _cut(self) -> None:
        if self.response is not None:
            dockerapi.cancel_stream(self.response)

    def _container_running(self) -> bool:
        from deployer.lifecycle import containers

        st = containers.state(self.ctx.docker, self.container_id)
        return st is not None and st.running

    def _read(self) -> None:
        sequencer = Sequencer(self.cursor)
        try:
            while not self.stopping:
                # Catch up without following first (reliable over rotated files), then follow. A
                # container already stopped before the catch-up began has all its output in that read.
                was_running = self._container_running()
                self._stream(sequencer, follow=False)
                if not was_running:
                    self.ended_cleanly = True
                    log.info("log of %s ended (%d lines stored by this tailer)", self.deployment_id, self.stored)
                    return
                following = threading.Event()
                following.set()
                self.last_frame_at = time.monotonic()
                watchdog = threading.Thread(target=self._watchdog, args=(sequencer, following), daemon=True)
                watchdog.start()
                try:
                    self._stream(sequencer, follow=True)
                except Exception:
                    if self.stopping or self.failed:
                        raise
                finally:
                    following.clear()
        except Exception as exc:  # the stream broke; the watcher starts a new tailer from the stored cursor
            gone = getattr(getattr(exc, "response", None), "status_code", None) in (404, 409)  # removed or going
            self.ended_cleanly = self.ended_cleanly or gone  # the container was removed: nothing more to read
            if not (self.failed or self.stopping or gone):
                log.warning("log stream of %s broke", self.deployment_id, exc_info=True)
        finally:
            self._put(None)

    def _flush(self, batch: list[Line]) -> None:
        if batch:
            self.cursor = store(self.ctx, self.deployment_id, batch, self.cursor)
            self.stored += len(batch)
            batch.clear()
        self._report_dropped(final=False)

    def _report_dropped(self, *, final: bool) -> None:
        """One system line per second at most while lines are being dropped, and one at the end."""
        if not self.budget.dropped or (not final and time.monotonic() - self._reported_at < DROP_REPORT_EVERY_S):
            return
        with self._dropped_lock:
            line = self.budget.report()
        if line:
            self._reported_at = time.monotonic()
            with self.ctx.engine.begin() as conn:
                append_system(conn, self.deployment_id, line)

    def _write(self) -> None:
        """Batches of about BATCH_LINES lines (one read's chunk more at most), none older than BATCH_SECONDS."""
        batch: list[Line] = []
        first_at = 0.0
        try:
            while True:
                timeout = None if not batch else max(0.0, first_at + BATCH_SECONDS - time.monotonic())
                if timeout is None and self.budget.dropped:
                    timeout = DROP_REPORT_EVERY_S  # output stopped while over budget: still report the drops
                try:
                    item = self.lines.get(timeout=timeout)
                except queue.Empty:
                    self._flush(batch)
                    continue
                if item is None:
                    self._flush(batch)
                    self._report_dropped(final=True)
                    return
                if not item:
                    self._report_dropped(final=False)
                    continue
                if not batch:
                    first_at = time.monotonic()
                batch.extend(item)
                if len(batch) >= BATCH_LINES:
                    self._flush(batch)
        except Exception:  # nothing past the stored cursor is lost: a new tailer re-reads it
            log.exception("storing the log of %s failed", self.deployment_id)
            self.failed = True
            self.stop()
