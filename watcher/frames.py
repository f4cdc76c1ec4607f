"""Docker's log stream as lines, each once (pure: no threads, no I/O).

Docker's multiplexed frames (an 8-byte header: stream id, payload size) carry `<RFC 3339 stamp> <text>`;
a message without its newline waits, per stream, for the rest, and a line that never ends is cut at
MAX_LINE_BYTES. The `Sequencer` drops lines that come again; `cursor_after` is what is stored with them.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

STREAM_NAMES = {1: "stdout", 2: "stderr"}
# A line that never ends is cut here: pending output is held (and re-copied per piece) until its
# newline comes, so without a bound a container printing no newline grows it without end.
MAX_LINE_BYTES = 64 * 1024


@functools.lru_cache(maxsize=64)
def _epoch_seconds(main: bytes) -> int:
    return int(datetime.strptime(main.decode(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


def parse_timestamp(raw: bytes) -> int:
    """RFC 3339 with up to nine fraction digits (Docker trims trailing zeros) → ns since the epoch.

    Lines of one second share its parse (strptime per line would cost more than the insert)."""
    main, _, frac = raw.rstrip(b"Z").partition(b".")
    return _epoch_seconds(main) * 1_000_000_000 + int((frac or b"0").ljust(9, b"0")[:9])


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
