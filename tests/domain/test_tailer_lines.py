"""The tailer's line handling: Docker's framed, timestamped output into stored lines and a cursor,
without a container (its network half is tested against Docker in tests/integration)."""

from __future__ import annotations

from tests.domain.harness import World
from watcher.tailer import Sequencer, admitted_lines, cursor_after, store

T1, T2, T3 = b"2030-01-01T00:00:01.5Z", b"2030-01-01T00:00:02Z", b"2030-01-01T00:00:03.000000001Z"


def test_whole_lines_of_both_streams_are_admitted_in_order_with_their_stamps() -> None:
    frames = [(1, T1 + b" hello\n"), (2, T2 + b" oops\n")]
    lines = admitted_lines(frames, {}, Sequencer())
    assert [(ln.stream, ln.text, ln.ts) for ln in lines] == [
        ("stdout", "hello", T1.decode()), ("stderr", "oops", T2.decode()),
    ]  # fmt: skip


def test_a_line_split_across_frames_is_stored_once_whole() -> None:
    partial: dict[int, bytes] = {}
    seq = Sequencer()
    assert admitted_lines([(1, T1 + b" par")], partial, seq) == []
    lines = admitted_lines([(1, T2 + b" tial\n")], partial, seq)
    assert [ln.text for ln in lines] == ["partial"]


def test_lines_replayed_after_a_resumed_follow_are_not_admitted_again() -> None:
    seq = Sequencer()
    first = admitted_lines([(1, T1 + b" a\n"), (1, T2 + b" b\n")], {}, seq)
    cursor = cursor_after(first, (0, 0))
    again = admitted_lines([(1, T2 + b" b\n"), (1, T3 + b" c\n")], {}, Sequencer(cursor))
    assert [ln.text for ln in again] == ["c"]


def test_stored_lines_follow_the_system_lines_and_move_the_cursor(world: World) -> None:
    dep = world.upload()
    lines = admitted_lines([(1, T1 + b" out\n"), (2, T3 + b" err\n")], {}, Sequencer())
    cursor = store(world.ctx, dep, lines, (0, 0))
    assert world.log(dep)[-2:] == ["out", "err"]
    row = world.row(dep)
    assert (row["log_cursor_out_ns"], row["log_cursor_err_ns"]) == cursor == (lines[0].ts_ns, lines[1].ts_ns)
