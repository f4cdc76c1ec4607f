"""The recorder's pure parts and its promise never to break or block the caller."""

from __future__ import annotations

import json
import threading
from typing import Any

from traces.recorder.core import MASK, Recorder, Redaction, fnv1a32, within_budget


def test_fnv1a_32_matches_the_published_test_vectors() -> None:
    assert fnv1a32("") == "811c9dc5"
    assert fnv1a32("a") == "e40c292c"
    assert fnv1a32("foobar") == "bf9cf968"


def test_default_redaction_masks_credentials_in_headers_and_bodies() -> None:
    r = Redaction()
    headers = r.headers_of([("Authorization", "Bearer x"), ("X-Client-Secret-Key", "k"), ("Accept", "json"),
                            ("Cookie", "s=1")])  # fmt: skip
    assert headers == {"Authorization": MASK, "X-Client-Secret-Key": MASK, "Accept": "json", "Cookie": MASK}
    body = r.body({"user": "a", "password": "p", "nested": [{"apiKey": "k", "ok": 1}], "JWT": "t"})
    assert body == {"user": "a", "password": MASK, "nested": [{"apiKey": MASK, "ok": 1}], "JWT": MASK}


def test_overrides_replace_the_default_lists() -> None:
    r = Redaction(headers=("x-mine",), body_keys=("pin",))
    assert r.headers_of([("Authorization", "a"), ("X-Mine", "b")]) == {"Authorization": "a", "X-Mine": MASK}
    assert r.body({"pin": 1, "password": 2}) == {"pin": MASK, "password": 2}


def test_content_over_64_kib_is_compacted_to_fit_and_says_so() -> None:
    small = {"sql": "select 1"}
    assert within_budget(small) is small
    big = {"sql": "x" * 200_000, "summary": "huge"}
    out = within_budget(big)
    assert len(json.dumps(out).encode()) <= 64 * 1024
    assert out["_compacted"]["originalBytes"] > 200_000 and out["summary"] == "huge"
    many = {f"k{i}": "y" * 500 for i in range(400)}
    assert len(json.dumps(within_budget(many)).encode()) <= 64 * 1024


class SlowSink:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.written: list[dict[str, Any]] = []

    def write(self, entries: list[dict[str, Any]]) -> None:
        self.release.wait(10)
        self.written += entries

    def update(self, uuid: str, content: dict[str, Any], tags: list[str]) -> None:
        raise RuntimeError("down")


def test_a_full_queue_drops_and_counts_instead_of_blocking_the_caller() -> None:
    sink = SlowSink()
    rec = Recorder(sink, watchers=frozenset({"request"}), queue_size=5, batch=1)
    for i in range(50):
        rec.record("request", {"i": i})
    assert rec.counters.dropped >= 40  # the sink is stuck: the caller never waited for it
    sink.release.set()
    assert rec.flush()
    assert len(sink.written) == rec.counters.recorded


def test_a_failing_sink_is_counted_and_never_raises_into_the_caller() -> None:
    sink = SlowSink()
    sink.release.set()
    rec = Recorder(sink, watchers=frozenset({"job"}))
    rec.update("some-id", {"status": "processed"})
    assert rec.record("job", {"not json": object()}) is not None  # content is serialised with str()
    assert rec.flush()
    assert rec.counters.failed >= 1 and "RuntimeError: down" in rec.counters.errors[0]


def test_an_entry_whose_content_cannot_be_built_is_counted_and_the_rest_are_written() -> None:
    sink = SlowSink()
    sink.release.set()
    rec = Recorder(sink, watchers=frozenset({"query"}))

    def broken() -> dict[str, Any]:
        raise ValueError("cannot build")

    rec.record("query", {"sql": "select 1"})
    rec.record("query", broken)
    rec.record("query", lambda: {"sql": "select 2"})  # built on the writer's thread
    assert rec.flush()
    assert [e["content"]["sql"] for e in sink.written] == ["select 1", "select 2"]
    assert rec.counters.failed == 1 and "ValueError: cannot build" in rec.counters.errors[0]
