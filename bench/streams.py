"""Live streams: 100 WebSocket clients on one deployment whose container prints lines, through the
real tailer, Redis and the web app under gunicorn. Every client must receive every line; latency is
from the commit of the line's row (the tailer publishes right after it) to its receipt. Then: how
many SSE streams one web process holds open at once, each still getting a new line.

    python bench/streams.py [clients] [lines] [open_streams]
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import simple_websocket

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench._stack import fresh_database, percentile
from bench._web import web
from deployer.context import build_context
from deployer.settings import load_settings
from deployer.store import tokens
from deployer.store.db import make_engine
from deployer.store.events import Publisher
from deployer.store.loglines import append_lines
from tests.support.rows import make_deployment_row
from watcher.tailer import Tailer

PRINT = "import sys, time\nfor i in range(1, {n} + 1):\n    print(f'line {{i}}', flush=True)\n    time.sleep(0.005)\n"


class TimedPublisher(Publisher):
    """Notes when each line's batch was committed (the tailer publishes right after its commit)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.committed: dict[int, float] = {}

    def log_batch(self, deployment_id: str, lines: Any) -> None:
        now = time.time()
        for ln in lines:
            self.committed[ln["line_no"]] = now
        super().log_batch(deployment_id, lines)


def ws_client(url: str, token: str, n: int, received: list[dict[int, float]], ready: threading.Barrier) -> None:
    got: dict[int, float] = {}
    ws = simple_websocket.Client.connect(url, headers={"Authorization": f"Bearer {token}"})
    try:
        while True:
            frame = json.loads(ws.receive(timeout=60))
            if frame["type"] == "status":
                ready.wait()
            elif frame["type"] == "log" and frame["text"].startswith("line "):
                got[frame["line_no"]] = time.time()
                if len(got) == n:
                    break
    finally:
        ws.close()
        received.append(got)


def websockets(settings: Any, engine: Any, token: str, url: str, clients: int, n: int) -> None:
    client = docker.from_env()
    publisher = TimedPublisher(settings.redis_url)
    ctx = build_context(settings, engine=engine, docker=client)
    ctx.publisher = publisher
    dep = make_deployment_row(engine, status="running")
    received: list[dict[int, float]] = []
    ready = threading.Barrier(clients + 1)
    ws_url = url.replace("http://", "ws://") + f"/ws/deployments/{dep}/logs"
    threads = [threading.Thread(target=ws_client, args=(ws_url, token, n, received, ready)) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()  # every client is live before the first line is printed
    container = client.containers.run("deployer/agent-base:latest", ["python", "-c", PRINT.format(n=n)], detach=True)
    tailer = Tailer(ctx, dep, container.id, (0, 0))
    tailer.start()
    for t in threads:
        t.join(timeout=300)
    tailer.join(timeout=60)
    container.remove(force=True)
    complete = sum(1 for got in received if len(got) == n)
    delays = [(at - publisher.committed[line]) * 1000 for got in received for line, at in got.items()]
    print(f"{clients} WebSocket clients x {n} lines: {complete}/{clients} clients got every line; "
          f"commit→receipt p50 {percentile(delays, 50):.1f} ms, p95 {percentile(delays, 95):.1f} ms")  # fmt: skip


def open_sse(host: str, port: int, path: str, token: str) -> socket.socket:
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return s


def read_until(s: socket.socket, marker: bytes, buf: bytearray) -> None:
    while marker not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("stream closed")
        buf += chunk


def many_streams(settings: Any, engine: Any, token: str, url: str, count: int) -> None:
    dep = make_deployment_row(engine, status="running")
    host, port = url.removeprefix("http://").split(":")
    t0 = time.perf_counter()
    socks = [open_sse(host, int(port), f"/api/deployments/{dep}/logs/stream", token) for _ in range(count)]
    buffers = [bytearray() for _ in socks]
    for s, b in zip(socks, buffers, strict=True):
        read_until(s, b"event: status", b)
    opened = time.perf_counter() - t0
    with engine.begin() as conn:
        last = append_lines(conn, dep, [("stdout", "to all of you")])
    Publisher(settings.redis_url).log_batch(dep, [{"line_no": last, "stream": "stdout", "text": "to all of you",
                                                   "ts": "2026-11-23T12:00:00Z"}])  # fmt: skip
    t1 = time.perf_counter()
    for s, b in zip(socks, buffers, strict=True):
        read_until(s, b"to all of you", b)
    fanout = time.perf_counter() - t1
    for s in socks:
        s.close()
    print(f"{count} SSE streams open at once on one web process (opened in {opened:.1f} s); "
          f"a new line reached all of them in {fanout * 1000:.0f} ms")  # fmt: skip


def main(clients: int, n: int, open_streams: int) -> None:
    redis_url = os.environ["DEPLOYER_TEST_REDIS_URL"]
    with fresh_database() as db:
        engine = make_engine(db)
        token = tokens.create_token(engine, "bench")[1]
        settings = load_settings({"DATABASE_URL": db, "REDIS_URL": redis_url, "DEPLOYER_SKIP_CADDY": "true",
                                  "DEPLOYER_DATA_ROOT": tempfile.mkdtemp()})  # fmt: skip
        with web(settings, workers=1, threads=open_streams + 64) as proc:
            websockets(settings, engine, token, proc.url, clients, n)
            many_streams(settings, engine, token, proc.url, open_streams)
        engine.dispose()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [100, 1000, 500][len(args):]))
