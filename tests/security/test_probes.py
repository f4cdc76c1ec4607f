"""A container answering the deployer's probes with hostile HTTP: redirects into the host's loopback
services, trickled bodies, huge bodies. The probes run on the host network, so none of it may work."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from deployer.lifecycle.health import probe, read_json

Handler = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A loopback HTTP server whose GET handler the test chooses; counts the requests it gets."""

    def __init__(self, handle: Handler) -> None:
        self.hits = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.hits += 1
                handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    servers: list[Server] = []

    def make(handle: Handler) -> Server:
        servers.append(Server(handle))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    h.send_response(status)
    for k, v in {"Content-Length": str(len(body)), **headers}.items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def test_a_health_redirect_into_a_loopback_service_is_not_followed(serve: Callable[[Handler], Server]) -> None:
    victim = serve(lambda h: _reply(h, 200, b"admin"))
    agent = serve(lambda h: _reply(h, 302, Location=f"{victim.url}/config/"))
    assert probe(requests.Session(), f"{agent.url}/health") is False
    assert read_json(requests.Session(), f"{agent.url}/.well-known/agent-card.json") is None
    assert agent.hits == 2 and victim.hits == 0


def test_a_trickled_body_cannot_hold_a_read_past_its_deadline(serve: Callable[[Handler], Server]) -> None:
    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        try:
            for _ in range(1000):  # a byte every 50 ms: each read is quick, the whole would take 50 s
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the reader gave up, as it should

    agent = serve(trickle)
    t0 = time.monotonic()
    assert read_json(requests.Session(), f"{agent.url}/.well-known/agent-card.json", deadline_s=0.5) is None
    assert time.monotonic() - t0 < 2.0


def test_a_body_over_the_cap_is_refused_without_reading_it_all(serve: Callable[[Handler], Server]) -> None:
    huge = json.dumps({"id": "x" * (1024 * 1024)}).encode()
    agent = serve(lambda h: _reply(h, 200, huge, **{"Content-Type": "application/json"}))
    assert read_json(requests.Session(), f"{agent.url}/card", max_bytes=16 * 1024) is None


def test_an_ordinary_card_is_read_whether_sized_or_chunked(serve: Callable[[Handler], Server]) -> None:
    card = json.dumps({"x-zynd": {"entityId": "zns:abc"}}).encode()

    def chunked(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for part in (card[:10], card[10:]):
            h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    sized = serve(lambda h: _reply(h, 200, card))
    streamed = serve(chunked)
    for server in (sized, streamed):
        assert read_json(requests.Session(), f"{server.url}/card") == {"x-zynd": {"entityId": "zns:abc"}}
    assert probe(requests.Session(), f"{sized.url}/health") is True
