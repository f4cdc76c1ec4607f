"""Log tailers: a container's stdout/stderr into `deployment_log`, each line once, in order.

Decide (pure): Docker's multiplexed frames, their timestamps, and which lines to drop because they
come again (see `Sequencer`). Apply: a reader thread on the follow stream and a writer that inserts batches and
moves the cursor in the same transaction, so a crash anywhere loses and duplicates nothing.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import update

from deployer.context import Context
from deployer.store.loglines import append_lines, append_system
from deployer.store.models import Deployment
from watcher.chunked import body_reader
from watcher.logbudget import LineBudget

log = logging.getLogger(__name__)
_dep = Deployment.__table__  # type: ignore[attr-defined]
STREAM_NAMES = {1: "stdout", 2: "stderr"}
BATCH_LINES = 5000
BATCH_SECONDS = 0.1
# A line that never ends is cut here: pending output is held (and re-copied per piece) until its
# newline comes, so without a bound a container printing no newline grows it without end.
MAX_LINE_BYTES = 64 * 1024
DROP_REPORT_EVERY_S = 1.0


@functools.lru_cache(maxsize=64)
def _epoch_seconds(main: bytes) -> int:
    return int(datetime.strptime(main.decode(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


def parse_timestamp(raw: bytes) -> int:
    """RFC 3339 with up to nine fraction digits (Docker trims trailing zeros) → ns since the epoch.

    Lines of one second share its parse (strptime per line would cost more than the insert)."""
    main, _, frac = raw.rstrip(b"Z").partition(b".")
    return _epoch_seconds(main) * 1_000_000_000 + int((frac or b"0").ljust(9, b"0")[:9])


def since_param(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


Frame = tuple[int, bytes]  # (stream id, payload)


def read_frame_chunks(raw: Any) -> Iterator[list[Frame]]:
    """The complete frames of Docker's multiplexed log stream, a list per read, until it ends.

    Reads whatever has arrived (`read1`) into a buffer: one small read per frame is slow, and a
    read that waits for a full buffer would hold back the last lines of a quiet stream. A list per
    read lets the consumer hand on thousands of lines with one queue operation.
    """
    read = getattr(raw, "read1", None) or raw.read
    unpack = struct.Struct(">I").unpack_from
    buf, pos = b"", 0
    while True:
        frames: list[Frame] = []
        end = len(buf)
        while end - pos >= 8:
            size = unpack(buf, pos + 4)[0]
            if end - pos < 8 + size:
                break
            frames.append((buf[pos], buf[pos + 8 : pos + 8 + size]))
            pos += 8 + size
        if frames:
            yield frames
        chunk = read(1 << 16)
        if not chunk:
            return
        buf, pos = buf[pos:] + chunk, 0


def read_frames(raw: Any) -> Iterator[Frame]:
    for frames in read_frame_chunks(raw):
        yield from frames


Cursor = tuple[int, int]  # (last stored stdout ns, last stored stderr ns)
SINCE_MARGIN_NS = 30 * 1_000_000_000


class Sequencer:
    """Admits each line once: per stream, only lines newer than the last admitted of that stream.

    Docker stamps each stream's lines in order, one copier per stream; the two streams are not
    ordered together (a stderr line can carry an earlier time than stdout lines before it in the
    log). Lines come again after a resumed follow (Docker's `since` is inclusive, and we start a
    margin earlier) and when Docker's follow reader replays part of a rotated json-file log (seen on
    Docker 20.10 with max-size); per stream, both are lines whose timestamp does not move forward.
    """

    def __init__(self, cursor: Cursor = (0, 0)) -> None:
        self.last = {"stdout": cursor[0], "stderr": cursor[1]}

    def admit(self, ts_ns: int, stream: str) -> bool:
        if ts_ns <= self.last[stream]:
            return False
        self.last[stream] = ts_ns
        return True


def since_for(cursor: Cursor) -> int:
    """Where a resumed follow starts: before both streams' cursors, with a margin for copier skew."""
    seen = [c for c in cursor if c]
    return max(0, min(seen) - SINCE_MARGIN_NS) if seen else 0


class Line(NamedTuple):  # a tuple: hundreds of thousands are made per second
    stream: str
    text: str
    ts_ns: int
    ts: str  # Docker's RFC 3339 stamp, as stored and published: formatting a datetime per line costs more


def split_payload(stream_id: int, payload: bytes, partial: dict[int, bytes]) -> list[Line]:
    """Lines of one frame (`<timestamp> <text>`); a message without its newline waits for the rest."""
    ts_raw, _, data = payload.partition(b" ")
    if partial and stream_id in partial:
        data = partial.pop(stream_id) + data
    if not data.endswith(b"\n"):
        if len(data) - data.rfind(b"\n") - 1 < MAX_LINE_BYTES:
            partial[stream_id] = data
            return []
        data += b"\n"  # cut: stored as it stands; what follows starts a new line
    ts_ns, name, ts = parse_timestamp(ts_raw), STREAM_NAMES.get(stream_id, "stdout"), ts_raw.decode()
    # tuple.__new__ skips NamedTuple's Python-level constructor: this runs once per line.
    return [_new_line(Line, (name, t.decode("utf-8", "replace"), ts_ns, ts)) for t in data[:-1].split(b"\n")]


_new_line = tuple.__new__


def admitted_lines(frames: list[Frame], partial: dict[int, bytes], sequencer: Sequencer) -> list[Line]:
    """The lines of a read's frames that the sequencer admits, in order.

    `split_payload` then `admit`, with the usual frame — one whole line, nothing pending — done inline:
    this runs for every line, and at tens of thousands a second the calls were a third of its cost."""
    last = sequencer.last
    out: list[Line] = []
    for stream_id, payload in frames:
        if partial or payload[-1:] != b"\n" or payload.count(b"\n") != 1:
            out.extend(ln for ln in split_payload(stream_id, payload, partial) if sequencer.admit(ln.ts_ns, ln.stream))
            continue
        sp = payload.find(b" ")
        raw = payload[:sp]
        ts_ns = parse_timestamp(raw)
        name = "stderr" if stream_id == 2 else "stdout"
        if ts_ns > last[name]:
            last[name] = ts_ns
            out.append(_new_line(Line, (name, payload[sp + 1 : -1].decode("utf-8", "replace"), ts_ns, raw.decode())))
    return out


def cursor_after(lines: list[Line], cursor: Cursor) -> Cursor:
    """The cursor once `lines` (admitted, in order) are stored."""
    out, err = cursor
    for ln in lines:
        if ln.stream == "stderr":
            err = max(err, ln.ts_ns)
        else:
            out = max(out, ln.ts_ns)
    return out, err


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
        """Unblock the reader: shut the socket down under the follow stream, as docker-py's own
        CancellableStream does (closing the response alone leaves a blocking read waiting)."""
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
        api = self.ctx.docker.api
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": 1}
        if since:
            params["since"] = since_param(since)
        resp = api._get(api._url("/containers/{0}/logs", self.container_id), params=params, stream=True)
        resp.raise_for_status()
        return resp

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
            from docker.types.daemon import CancellableStream

            with contextlib.suppress(OSError):
                CancellableStream(iter(()), self.response).close()

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
