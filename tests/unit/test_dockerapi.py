"""The Docker adapter (deployer/lifecycle/dockerapi.py) against a stand-in client: the log stream's
exact request, and which reader the watcher gets for a response."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from deployer.lifecycle import dockerapi
from watcher.chunked import ChunkedBody, body_reader


class Api:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], bool]] = []
        self.response = SimpleNamespace(raise_for_status=lambda: None)

    def _url(self, path: str, *args: str) -> str:
        return "http+docker://localhost/v1.41" + path.format(*args)

    def _get(self, url: str, *, params: dict[str, Any], stream: bool) -> Any:
        self.calls.append((url, params, stream))
        return self.response


def test_a_log_stream_asks_for_both_streams_timestamped_from_since_in_dockers_format() -> None:
    api = Api()
    client = SimpleNamespace(api=api)
    dockerapi.open_log_stream(client, "abc", since_ns=1795435200_000000042, follow=True)
    dockerapi.open_log_stream(client, "abc", follow=False)
    url = "http+docker://localhost/v1.41/containers/abc/logs"
    assert api.calls == [
        (url, {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1, "since": "1795435200.000000042"}, True),
        (url, {"stdout": 1, "stderr": 1, "follow": 0, "timestamps": 1}, True),
    ]


def test_since_is_seconds_and_nine_fraction_digits() -> None:
    assert dockerapi.since_param(1795435200_000000042) == "1795435200.000000042"
    assert dockerapi.since_param(5) == "0.000000005"


class Socketish:
    def read1(self, _n: int) -> bytes:
        return b""


def response(*, chunked: bool, chunk_left: int | None) -> Any:
    http = SimpleNamespace(fp=Socketish(), chunked=chunked, chunk_left=chunk_left)
    return SimpleNamespace(raw=SimpleNamespace(_fp=http))


def test_an_unread_chunked_body_is_decoded_by_the_watcher_and_anything_else_by_urllib3() -> None:
    assert isinstance(body_reader(response(chunked=True, chunk_left=None)), ChunkedBody)
    started = response(chunked=True, chunk_left=3)  # part of a chunk was read already: urllib3 goes on
    assert body_reader(started) is started.raw
    plain = response(chunked=False, chunk_left=None)
    assert body_reader(plain) is plain.raw
