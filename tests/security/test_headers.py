"""Bytes that are not ASCII where a token, a signature or a timestamp belongs: a 4xx, never a 500."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deployer.settings import Settings, load_settings
from tests.support.live import LiveServer


def raw_request(url: str, head: bytes, body: bytes = b"") -> int:
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as c:
        c.sendall(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        return int(c.recv(64).split(b" ")[1])


@pytest.mark.parametrize("header", [b"Authorization: Bearer dpl_\xff\xfe\xe9", b"Authorization: \xc3\xa9\xc3\xa9",
                                    b"Cookie: session=\xff\xfe"])  # fmt: skip
def test_the_api_answers_non_ascii_credentials_with_401(
    settings: Settings, make_live_server: Callable[..., LiveServer], header: bytes
) -> None:
    server = make_live_server(settings)
    assert raw_request(server.url, b"GET /api/deployments HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n") == 401
    assert raw_request(server.url, b"GET /t/\xff\xfe/api/deployments HTTP/1.1\r\nHost: x\r\n") == 401


@pytest.mark.parametrize("field", ["x-zt-signature", "x-zt-timestamp", "x-zt-body-sha256", "x-zt-key-id", "x-zt-nonce"])
def test_trace_ingest_answers_non_ascii_signing_headers_with_a_4xx(tmp_path: Path, field: str) -> None:
    from traces.runtime.app import create_trace_app

    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "TRACE_PROXY_KEY_ID": "k",
                              "TRACE_PROXY_SECRET": "s" * 20})  # fmt: skip
    server = LiveServer(create_trace_app(settings))
    try:
        body = b'{"entry": {}}'
        headers = {"x-zt-key-id": b"k", "x-zt-timestamp": str(int(time.time() * 1000)).encode(),
                   "x-zt-nonce": b"n", "x-zt-body-sha256": hashlib.sha256(body).hexdigest().encode(),
                   "x-zt-signature": b"0" * 64, field: "\xe9\xff".encode("latin-1") * 8}  # fmt: skip
        head = b"POST /zin/trace/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + b"".join(
            k.encode() + b": " + v + b"\r\n" for k, v in headers.items()
        )
        assert 400 <= raw_request(server.url, head, body) < 500
    finally:
        server.close()
