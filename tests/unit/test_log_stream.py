"""The live log sequence against an in-memory source: no line repeated or skipped, whatever arrives."""

from __future__ import annotations

import queue
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from web.hub import RESYNC, Subscription
from web.streams import Event, LogStream, Timing, sse_format, ws_frame


class Source:
    def __init__(self, n: int, status: str = "running") -> None:
        self.lines = [self.line(i) for i in range(1, n + 1)]
        self.state = status

    @staticmethod
    def line(i: int) -> dict[str, Any]:
        return {"line_no": i, "stream": "stdout", "text": f"l{i}", "ts": "2026-11-23T12:00:00Z"}

    def add(self, count: int) -> list[dict[str, Any]]:
        new = [self.line(len(self.lines) + k + 1) for k in range(count)]
        self.lines += new
        return new

    def status(self) -> str:
        return self.state

    def lines_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        return [ln for ln in self.lines if ln["line_no"] > after][:limit]

    def last_lines(self, count: int) -> list[dict[str, Any]]:
        return self.lines[-count:]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.01
        return self.t


def line_numbers(events: list[Event]) -> list[int]:
    return [e.data["line_no"] for e in events if e.type == "log"]


def run(source: Source, messages: list[dict[str, Any]], *, after: int | None = None) -> list[Event]:
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    for m in messages:
        q.put(m)
    sub = Subscription("d", q)
    # the stream ends on the terminal status the last message carries; nothing waits on a real clock
    return list(LogStream(source, after=after, sub=sub, timing=Timing(settle=0.05), clock=Clock()).events())


def test_a_new_client_gets_the_last_500_lines_then_ready_and_the_status() -> None:
    events = run(Source(1200, status="stopped"), [])
    assert line_numbers(events) == list(range(701, 1201))
    kinds = [e.type for e in events if e.type != "log"]
    assert kinds == ["ready", "status", "done"]
    assert next(e for e in events if e.type == "ready").data == {"last_line": 1200}


def test_resuming_after_a_line_sends_every_later_line_once_even_past_a_page() -> None:
    events = run(Source(4500, status="crashed"), [], after=10)
    assert line_numbers(events) == list(range(11, 4501))
    assert events[-1] == Event("done", {"status": "crashed", "last_line": 4500})


def test_live_batches_continue_the_sequence_and_a_terminal_status_ends_it() -> None:
    source = Source(3)
    batch1, batch2 = source.add(2), source.add(3)
    events = run(source, [{"type": "log", "lines": batch1}, {"type": "log", "lines": batch2},
                          {"type": "status", "status": "stopped"}])  # fmt: skip
    # lines 4..8 were already in the database at connect time: the backlog had them; the batches repeat them
    assert line_numbers(events) == list(range(1, 9))
    assert [e.data for e in events if e.type == "status"] == [{"status": "running"}, {"status": "stopped"}]


@given(st.lists(st.tuples(st.integers(1, 30), st.booleans()), max_size=12))
def test_lost_and_repeated_messages_never_skip_or_repeat_a_line(batches: list[tuple[int, bool]]) -> None:
    source = Source(5)
    messages: list[dict[str, Any]] = []
    for size, delivered in batches:
        new = source.add(size)
        if delivered:  # an undelivered batch is a message Redis lost: the next one shows a gap
            messages.append({"type": "log", "lines": new})
            messages.append({"type": "log", "lines": new[: size // 2]})  # and a repeat
    source.state = "crashed"
    messages.append(RESYNC)
    events = run(source, messages, after=0)
    assert line_numbers(events) == list(range(1, len(source.lines) + 1))


def test_a_client_whose_queue_overflowed_is_told_and_the_stream_ends() -> None:
    events = run(Source(2), [{"type": "overflow"}])
    assert events[-1].type == "error" and "after=2" in events[-1].data["message"]


def test_sse_events_carry_the_line_number_as_id_and_ws_frames_are_flat_json() -> None:
    assert sse_format(Event("log", {"line_no": 7, "text": "<b>"}, 7)) == (
        'id: 7\nevent: log\ndata: {"line_no":7,"text":"<b>"}\n\n'
    )
    assert sse_format(Event("keepalive", {})) == ": keepalive\n\n"
    assert ws_frame(Event("done", {"status": "stopped"})) == '{"type":"done","status":"stopped"}'
