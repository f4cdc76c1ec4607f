from __future__ import annotations

import io
import struct

from hypothesis import assume, given
from hypothesis import strategies as st

from deployer.lifecycle.containers import crash_reason
from deployer.supervision.crashes import policy_line, restart_delay, restart_limit
from watcher.logbudget import LineBudget
from watcher.tailer import (
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
    since_param,
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


def test_crash_reasons_name_oom_and_the_exact_exit_code_zero_included() -> None:
    assert crash_reason(137, True, 256) == "Container OOM-killed (memory limit 256 MB)"
    assert crash_reason(0, False, 256) == "Container exited 0"
    assert crash_reason(None, False, 256) == "Container disappeared"


def test_the_restart_policy_backs_off_exponentially_and_gives_up() -> None:
    assert restart_limit("no") == 0 and restart_limit("on-failure:3") == 3
    assert [restart_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy_line("on-failure:2", 0) == "restart policy on-failure:2: restarting in 1 s (1 of 2)"
    assert policy_line("on-failure:2", 2) == "restart policy on-failure:2: restarted 2 times already; left crashed"
    assert policy_line("no", 0) == "restart policy is 'no': left crashed"



def test_three_failed_probes_make_a_running_deployment_unhealthy_and_one_success_recovers_it() -> None:
    from deployer.store.states import Status
    from deployer.supervision.probes import decide

    assert decide(Status.RUNNING, 0, False).to is None
    assert decide(Status.RUNNING, 1, False).failures == 2
    d = decide(Status.RUNNING, 2, False)
    assert d.to is Status.UNHEALTHY and d.line and d.line.startswith("[UNHEALTHY]")
    assert decide(Status.UNHEALTHY, 7, False).to is None
    r = decide(Status.UNHEALTHY, 7, True)
    assert r.to is Status.RUNNING and r.failures == 0 and r.line and r.line.startswith("[RECOVERED]")
    assert decide(Status.RUNNING, 2, True) == decide(Status.RUNNING, 0, True)


def test_cpu_is_the_usage_delta_over_the_window_as_a_fraction_of_one_cpu() -> None:
    from deployer.supervision.metrics import Reading, cpu_fraction, memory_used

    assert cpu_fraction(Reading(10.0, 1_000_000_000, 0, 0), Reading(11.0, 1_500_000_000, 0, 0)) == 0.5
    assert cpu_fraction(Reading(10.0, 0, 0, 0), Reading(12.0, 4_000_000_000, 0, 0)) == 2.0
    v1 = {"memory_stats": {"usage": 100 * 2**20, "stats": {"cache": 30 * 2**20}}}
    v2 = {"memory_stats": {"usage": 100 * 2**20, "stats": {"inactive_file": 10 * 2**20}}}
    assert memory_used(v1) == 70 * 2**20 and memory_used(v2) == 90 * 2**20


def test_a_log_budget_keeps_a_burst_then_its_rate_and_counts_every_dropped_line_once() -> None:
    budget = LineBudget(rate=100, burst=500)
    assert budget.take(400, now=0.0) == 400
    assert budget.take(400, now=0.0) == 100  # the burst is spent
    assert budget.take(50, now=0.2) == 20  # 0.2 s at 100 lines/s
    assert budget.report() == "330 output lines dropped: over this deployment's log budget of 100 lines/s"
    assert budget.report() is None  # reported once
    assert budget.take(1000, now=100.0) == 500  # refills up to the burst, never beyond


def test_a_budget_of_zero_keeps_everything() -> None:
    budget = LineBudget(rate=0, burst=1)
    assert budget.take(10**6, now=0.0) == 10**6 and budget.report() is None
