"""Docker's log stream as lines (watcher/frames.py): frames whole however the bytes come, lines whole
however the frames split them, a line that never ends cut at 64 KiB, and each line stored exactly once."""

from __future__ import annotations

import io
import struct

from hypothesis import assume, given
from hypothesis import strategies as st

from deployer.lifecycle.dockerapi import since_param
from watcher.frames import (
    MAX_LINE_BYTES,
    SINCE_MARGIN_NS,
    Line,
    Sequencer,
    admitted_lines,
    cursor_after,
    parse_timestamp,
    read_frame_chunks,
    read_frames,
    since_for,
    split_payload,
)


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


def test_docker_timestamps_parse_to_nanoseconds_whatever_their_precision() -> None:
    assert parse_timestamp(b"2026-11-23T12:00:00.123456789Z") == 1795435200_123456789
    assert parse_timestamp(b"2026-11-23T12:00:00.1Z") == 1795435200_100000000
    assert parse_timestamp(b"2026-11-23T12:00:00Z") == 1795435200_000000000
    assert since_param(1795435200_000000042) == "1795435200.000000042"


def test_multiplexed_frames_are_split_by_stream_even_across_reads() -> None:
    data = frame(1, b"2026-11-23T12:00:00.1Z out\n") + frame(2, b"2026-11-23T12:00:00.2Z err\n")
    assert list(read_frames(io.BytesIO(data))) == [
        (1, b"2026-11-23T12:00:00.1Z out\n"), (2, b"2026-11-23T12:00:00.2Z err\n")
    ]  # fmt: skip
    assert list(read_frames(io.BytesIO(data[:-3]))) == [(1, b"2026-11-23T12:00:00.1Z out\n")]


class Trickle:
    """A response body that hands out a few bytes per read, as a slow socket does."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def read1(self, _n: int) -> bytes:
        out, self.data = self.data[: self.step], self.data[self.step :]
        return out


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=40)), max_size=30), st.integers(1, 64))
def test_frames_come_whole_and_in_order_however_the_bytes_are_cut(frames: list[tuple[int, bytes]], step: int) -> None:
    data = b"".join(frame(sid, payload) for sid, payload in frames)
    chunks = list(read_frame_chunks(Trickle(data, step)))
    assert [f for chunk in chunks for f in chunk] == frames
    assert all(chunks)  # a read that completes no frame hands on nothing


def test_a_message_without_newline_waits_for_its_continuation() -> None:
    partial: dict[int, bytes] = {}
    assert split_payload(1, b"2026-11-23T12:00:00.1Z half a ", partial) == []
    lines = split_payload(1, b"2026-11-23T12:00:00.1Z line\n", partial)
    assert [ln.text for ln in lines] == ["half a line"]
    assert lines[0].ts == "2026-11-23T12:00:00.1Z"  # Docker's own stamp is what gets stored
    assert split_payload(2, b"2026-11-23T12:00:00.3Z err\n", partial)[0].stream == "stderr"


def test_output_that_never_ends_its_line_is_cut_at_the_line_limit_and_nothing_is_held_beyond_it() -> None:
    partial: dict[int, bytes] = {}
    piece = b"x" * (16 * 1024)  # Docker hands a long line on in 16 KiB pieces, each stamped
    cut: list[str] = []
    for i in range(64):  # 1 MiB with no newline
        stamp = f"2026-11-23T12:{i // 60:02d}:{i % 60:02d}Z ".encode()
        cut += [ln.text for ln in split_payload(1, stamp + piece, partial)]
        assert len(partial.get(1, b"")) < MAX_LINE_BYTES
    assert len(cut) == 16 and {len(t) for t in cut} == {MAX_LINE_BYTES}
    assert "".join(cut) + partial.get(1, b"").decode() == "x" * (64 * 16 * 1024)
    # whole lines before the unending tail are not cut
    partial = {}
    lines = split_payload(1, b"2026-11-23T12:00:00Z a\nb\n" + piece * 4, partial)
    assert [ln.text for ln in lines][:2] == ["a", "b"] and len(lines) == 3


_payloads = st.builds(
    lambda sec, frac, stream, texts, newline: (stream, f"2026-11-23T12:00:{sec:02d}{frac}Z ".encode()
                                               + b"\n".join(texts) + (b"\n" if newline else b"")),
    st.integers(0, 3), st.sampled_from(["", ".1", ".25", ".123456789"]), st.sampled_from([1, 2]),
    st.lists(st.binary(max_size=6).filter(lambda b: b"\n" not in b), min_size=1, max_size=3), st.booleans(),
)  # fmt: skip


@given(reads=st.lists(st.lists(_payloads, max_size=6), max_size=6))
def test_the_inline_path_admits_exactly_what_split_and_admit_do(reads: list[list[tuple[int, bytes]]]) -> None:
    """Repeated and older stamps, both streams, lines split across frames, several lines a frame."""
    slow_seq, fast_seq = Sequencer(), Sequencer()
    slow_partial: dict[int, bytes] = {}
    fast_partial: dict[int, bytes] = {}
    for frames in reads:
        slow = [ln for sid, p in frames for ln in split_payload(sid, p, slow_partial)
                if slow_seq.admit(ln.ts_ns, ln.stream)]  # fmt: skip
        assert admitted_lines(frames, fast_partial, fast_seq) == slow
        assert fast_partial == slow_partial and fast_seq.last == slow_seq.last


def test_each_stream_admits_only_lines_newer_than_its_own_last() -> None:
    seq = Sequencer((100, 50))
    got = [seq.admit(ts, stream) for ts, stream in [(100, "stdout"), (101, "stdout"), (60, "stderr"),
                                                     (101, "stdout"), (55, "stderr"), (61, "stderr")]]  # fmt: skip
    assert got == [False, True, True, False, False, True]


def test_a_resumed_follow_starts_a_margin_before_both_cursors() -> None:
    assert since_for((0, 0)) == 0
    assert since_for((100 * 10**9, 0)) == 70 * 10**9
    assert since_for((100 * 10**9, 90 * 10**9)) == 60 * 10**9


def test_the_cursor_is_the_newest_stored_line_of_each_stream() -> None:
    lines = [Line("stdout", "a", 5, ""), Line("stderr", "b", 3, ""), Line("stdout", "c", 7, "")]
    assert cursor_after(lines, (0, 9)) == (7, 9)


def interleave(out: list[int], err: list[int], order: list[bool]) -> list[Line]:
    """Both streams in some file order; each stream keeps its own (increasing) order."""
    o, e, merged = iter(out), iter(err), []
    for pick_out in order:
        nxt = next(o, None) if pick_out else next(e, None)
        if nxt is not None:
            merged.append(Line("stdout" if pick_out else "stderr", f"{'o' if pick_out else 'e'}{nxt}", nxt, ""))
    merged += [Line("stdout", f"o{t}", t, "") for t in o] + [Line("stderr", f"e{t}", t, "") for t in e]
    return merged


stamps = st.lists(st.integers(1, 5), max_size=40).map(lambda gs: [sum(gs[: i + 1]) for i in range(len(gs))])


@given(stamps, stamps, st.lists(st.booleans(), max_size=80), st.integers(0, 80),
       st.lists(st.tuples(st.integers(0, 80), st.integers(1, 20)), max_size=3))  # fmt: skip
def test_resuming_and_replays_store_every_line_exactly_once(
    out: list[int], err: list[int], order: list[bool], cut: int, replays: list[tuple[int, int]]
) -> None:
    """Stop after `cut` lines and resume from the stored cursor (Docker's `since` is inclusive and
    filters by time); along the way Docker may replay stretches of the log."""
    lines = interleave([t * 10**9 for t in out], [t * 10**9 for t in err], order)
    # The resume margin rests on Docker's two copiers being at most SINCE_MARGIN_NS apart: no line
    # comes in the file after a line stamped that much later (seconds apart at most in practice).
    latest = 0
    for ln in lines:
        assume(ln.ts_ns > latest - SINCE_MARGIN_NS)
        latest = max(latest, ln.ts_ns)
    stream: list[Line] = []
    pos = 0
    for at, back in sorted(replays):
        at = max(pos, min(at, len(lines)))
        stream += lines[pos:at] + lines[max(0, at - back) : at]
        pos = at
    stream += lines[pos:]
    seq = Sequencer()
    first = [ln for ln in stream[:cut] if seq.admit(ln.ts_ns, ln.stream)]
    cursor = cursor_after(first, (0, 0)) if first else (0, 0)
    resumed = Sequencer(cursor)
    rest = [ln for ln in lines if ln.ts_ns >= since_for(cursor) and resumed.admit(ln.ts_ns, ln.stream)]
    stored = first + rest
    by_stream = sorted(stored, key=lambda ln: (ln.stream, ln.ts_ns))
    assert by_stream == sorted(lines, key=lambda ln: (ln.stream, ln.ts_ns))
    assert [ln for ln in stored if ln.stream == "stdout"] == [ln for ln in lines if ln.stream == "stdout"]


def test_each_stream_keeps_its_own_unfinished_line_while_the_other_stream_goes_on() -> None:
    partial: dict[int, bytes] = {}
    assert split_payload(1, b"2026-11-23T12:00:00.1Z out-", partial) == []
    assert split_payload(2, b"2026-11-23T12:00:00.2Z err-", partial) == []
    assert [ln.text for ln in split_payload(2, b"2026-11-23T12:00:00.3Z end\n", partial)] == ["err-end"]
    assert [(ln.stream, ln.text) for ln in split_payload(1, b"2026-11-23T12:00:00.4Z end\n", partial)] == [
        ("stdout", "out-end")
    ]
    assert partial == {}


def test_a_pending_line_is_held_up_to_one_byte_short_of_the_limit_and_cut_at_it() -> None:
    stamp = b"2026-11-23T12:00:00Z "
    partial: dict[int, bytes] = {}
    assert split_payload(1, stamp + b"x" * (MAX_LINE_BYTES - 1), partial) == []
    assert len(partial[1]) == MAX_LINE_BYTES - 1
    lines = split_payload(1, stamp + b"y", partial)
    assert [len(ln.text) for ln in lines] == [MAX_LINE_BYTES] and lines[0].text.endswith("y")
    assert partial == {}  # what follows the cut starts a new line


def test_the_inline_path_cuts_a_line_that_never_ends_as_the_slow_path_does() -> None:
    piece = b"x" * (16 * 1024)
    reads = [[(1, f"2026-11-23T12:00:{i:02d}Z ".encode() + piece)] for i in range(9)]
    partial: dict[int, bytes] = {}
    seq = Sequencer()
    texts = [ln.text for frames in reads for ln in admitted_lines(frames, partial, seq)]
    assert [len(t) for t in texts] == [MAX_LINE_BYTES, MAX_LINE_BYTES]
    assert len(partial[1]) == 16 * 1024


def test_bytes_that_are_not_utf8_are_replaced_and_unknown_stream_ids_count_as_stdout() -> None:
    partial: dict[int, bytes] = {}
    (line,) = split_payload(3, b"2026-11-23T12:00:00Z caf\xe9\n", partial)
    assert (line.stream, line.text) == ("stdout", "caf\ufffd")
    (fast,) = admitted_lines([(3, b"2026-11-23T12:00:01Z caf\xe9\n")], {}, Sequencer())
    assert (fast.stream, fast.text) == ("stdout", "caf\ufffd")


def test_a_frame_of_several_lines_yields_each_with_the_frames_stamp() -> None:
    lines = split_payload(2, b"2026-11-23T12:00:00.5Z a\nb\nc\n", {})
    assert [(ln.stream, ln.text, ln.ts) for ln in lines] == [
        ("stderr", "a", "2026-11-23T12:00:00.5Z"), ("stderr", "b", "2026-11-23T12:00:00.5Z"),
        ("stderr", "c", "2026-11-23T12:00:00.5Z"),
    ]  # fmt: skip
