"""SSE and WebSocket log streams over real HTTP: every line once, in order, across reconnects; with
Redis fan-out and without it (embedded mode polls the database)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
import simple_websocket
from sqlalchemy import Engine

from deployer.settings import Settings, load_settings
from deployer.store import tokens
from deployer.store.events import Publisher
from deployer.store.loglines import append_lines
from deployer.store.states import Status
from deployer.store.transitions import transition
from tests.support.http import error_of
from tests.support.live import LiveServer
from tests.support.rows import make_deployment_row
from tests.support.stack import wait_for
from web.hub import Hub
from web.streams import Timing

FAST = Timing(poll=0.1, resync=0.5, keepalive=0.5, settle=0.3)


class Writer:
    """Writes log lines the way the tailer does: stored first, then published."""

    def __init__(self, engine: Engine, deployment_id: str, publisher: Publisher | None) -> None:
        self.engine, self.dep, self.publisher = engine, deployment_id, publisher

    def lines(self, texts: list[str]) -> None:
        with self.engine.begin() as conn:
            last = append_lines(conn, self.dep, [("stdout", t) for t in texts])
        if self.publisher is not None:
            first = last - len(texts) + 1
            ts = "2026-11-23T12:00:00Z"
            batch = [{"line_no": first + i, "stream": "stdout", "text": t, "ts": ts} for i, t in enumerate(texts)]
            self.publisher.log_batch(self.dep, batch)

    def status(self, expected: Status, to: Status) -> None:
        on = self.publisher.status if self.publisher is not None else None
        assert transition(self.engine, self.dep, expected=expected, to=to, on_transition=on)


@pytest.fixture(params=["redis", "polling"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stream_settings(settings_env: dict[str, str], redis_url: str, mode: str) -> Settings:
    return load_settings({**settings_env, "REDIS_URL": redis_url if mode == "redis" else ""})


@pytest.fixture
def server(make_live_server: Callable[..., LiveServer], stream_settings: Settings) -> LiveServer:
    return make_live_server(stream_settings, kick=lambda _name: None, stream_timing=FAST)


@pytest.fixture
def token(engine: Engine) -> str:
    return tokens.create_token(engine, "streams")[1]


@pytest.fixture
def writer(engine: Engine, stream_settings: Settings) -> Iterator[Writer]:
    dep = make_deployment_row(engine, status="running")
    yield Writer(engine, dep, Publisher(stream_settings.redis_url) if stream_settings.redis_url else None)


def sse_events(resp: requests.Response) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    event, data, ident = "message", "", None
    for raw in resp.iter_lines(decode_unicode=True):
        if raw == "":
            if data:
                yield event, json.loads(data), ident
            event, data, ident = "message", "", None
        elif raw.startswith("event: "):
            event = raw[7:]
        elif raw.startswith("data: "):
            data += raw[6:]
        elif raw.startswith("id: "):
            ident = raw[4:]


def sse(server: LiveServer, token: str, dep: str, **headers: str) -> requests.Response:
    resp = requests.get(f"{server.url}/api/deployments/{dep}/logs/stream", stream=True, timeout=30,
                        headers={"Authorization": f"Bearer {token}", **headers})  # fmt: skip
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    return resp


def test_sse_sends_the_last_500_then_live_lines_then_done(server: LiveServer, token: str, writer: Writer) -> None:
    writer.lines([f"old {i}" for i in range(1, 601)])
    resp = sse(server, token, writer.dep)
    got: list[int] = []
    kinds: list[str] = []
    for event, data, ident in sse_events(resp):
        kinds.append(event)
        if event == "log":
            got.append(data["line_no"])
            assert ident == str(data["line_no"])
        elif event == "status" and data["status"] == "running":
            threading.Thread(target=lambda: ([writer.lines([f"new {b}.{i}" for i in range(10)]) for b in range(5)],
                                             writer.status(Status.RUNNING, Status.STOPPED))).start()  # fmt: skip
        elif event == "done":
            assert data["status"] == "stopped"
            break
    resp.close()
    assert got == list(range(101, 652))  # 500 old, 50 new, and the system line of the stop
    assert kinds[500:502] == ["ready", "status"]


def test_sse_resumes_after_last_event_id_without_gaps_or_repeats(
    server: LiveServer, token: str, writer: Writer
) -> None:
    writer.lines([f"a {i}" for i in range(20)])
    first = sse(server, token, writer.dep)
    seen: list[int] = []
    for event, data, _ in sse_events(first):
        if event == "log":
            seen.append(data["line_no"])
        if event == "status":
            break
    first.close()  # the client drops; lines keep coming meanwhile
    writer.lines([f"b {i}" for i in range(30)])
    second = sse(server, token, writer.dep, **{"Last-Event-ID": str(seen[-1])})
    for event, data, _ in sse_events(second):
        if event == "log":
            seen.append(data["line_no"])
        if event == "status" and data["status"] == "running":
            threading.Thread(
                target=lambda: (writer.lines(["c"]), writer.status(Status.RUNNING, Status.CRASHED))
            ).start()
        if event == "done":
            break
    second.close()
    assert seen == list(range(1, 53))


def ws_url(server: LiveServer, dep: str, after: int | None = None) -> str:
    query = f"?after={after}" if after is not None else ""
    return server.url.replace("http://", "ws://") + f"/ws/deployments/{dep}/logs{query}"


def test_websocket_frames_hello_log_ready_status_done_and_answers_ping(
    server: LiveServer, token: str, writer: Writer
) -> None:
    writer.lines([f"x {i}" for i in range(5)])
    auth = {"Authorization": f"Bearer {token}"}
    ws = simple_websocket.Client.connect(ws_url(server, writer.dep, after=2), headers=auth)
    frames: list[dict[str, Any]] = []
    try:
        while True:
            raw = ws.receive(timeout=20)
            assert raw is not None, frames
            frame = json.loads(raw)
            frames.append(frame)
            if frame["type"] == "status" and frame["status"] == "running":
                ws.send(json.dumps({"type": "ping"}))
            if frame["type"] == "pong":
                writer.lines(["live"])
                writer.status(Status.RUNNING, Status.STOPPED)
            if frame["type"] == "done":
                break
    finally:
        with contextlib.suppress(simple_websocket.ConnectionClosed, OSError):
            ws.close()  # the server may have closed it first, after `done`
    kinds = [f["type"] for f in frames]
    assert kinds[:5] == ["hello", "log", "log", "log", "ready"]
    assert [f["line_no"] for f in frames if f["type"] == "log"] == [3, 4, 5, 6, 7]
    assert "pong" in kinds and kinds[-1] == "done" and frames[-1]["status"] == "stopped"


def test_websocket_refuses_a_missing_token_or_a_foreign_origin_before_the_upgrade(
    server: LiveServer, writer: Writer, token: str
) -> None:
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    url = f"{server.url}/ws/deployments/{writer.dep}/logs"
    with requests.get(url, headers=upgrade, timeout=10) as resp:
        error_of(resp, 401, "UNAUTHORIZED")
    session = requests.Session()  # a logged-in browser on a page of another site
    with session.get(f"{server.url}/login", timeout=10) as page:
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    session.post(f"{server.url}/login", data={"token": token, "csrf_token": csrf}, timeout=10).close()
    with session.get(url, headers={**upgrade, "Origin": "http://evil.example"}, timeout=10) as resp:
        error_of(resp, 403, "CSRF")


def test_one_redis_subscriber_serves_every_stream_of_a_process(
    make_live_server: Callable[..., LiveServer], settings_env: dict[str, str], redis_url: str, engine: Engine
) -> None:
    settings = load_settings({**settings_env, "REDIS_URL": redis_url})
    server = make_live_server(settings, kick=lambda _name: None, stream_timing=FAST)
    token = tokens.create_token(engine, "fan-out")[1]
    writer = Writer(engine, make_deployment_row(engine, status="running"), Publisher(redis_url))
    clients = [sse(server, token, writer.dep) for _ in range(12)]
    readers = [sse_events(c) for c in clients]
    for r in readers:
        while next(r)[0] != "status":
            pass
    hub = server.app.extensions["deployer"].hub
    listing = redis.Redis.from_url(redis_url).client_list()
    assert [int(c["psub"]) for c in listing if c.get("name") == hub.client_name] == [2]  # one connection, 2 patterns
    assert hub.subscribers() == 12
    writer.lines(["to everyone"])
    for r in readers:
        event, data, _ = next(r)
        assert (event, data["text"]) == ("log", "to everyone")
    for c in clients:
        c.close()
    wait_for(lambda: hub.subscribers() == 0, timeout=10, what="streams to let go of the hub")


def test_a_slow_subscriber_is_marked_and_cannot_stall_others(redis_url: str) -> None:
    hub = Hub(redis_url, queue_size=3)
    slow, fast = hub.subscribe("d1"), hub.subscribe("d1")
    try:
        for i in range(5):
            hub.dispatch("deployer:logs:d1", {"type": "log", "lines": [{"line_no": i}]})
            fast.queue.get_nowait()
        assert slow.overflowed and not fast.overflowed
        drained = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        assert drained[-1] == {"type": "overflow"}
    finally:
        slow.close()
        fast.close()
        hub.stop()


def test_open_streams_end_when_their_token_is_revoked(
    server: LiveServer, token: str, writer: Writer, engine: Engine
) -> None:
    info = tokens.verify_token(engine, token)
    assert info is not None
    resp = sse(server, token, writer.dep)
    ws = simple_websocket.Client.connect(ws_url(server, writer.dep), headers={"Authorization": f"Bearer {token}"})
    events = sse_events(resp)
    assert next(e for e, _, _ in events if e == "status") == "status"  # both streams are live
    tokens.revoke_token(engine, str(info.id))
    # the SSE stream sends its reason and ends (iteration stops: the server closed the response)
    tail = [(e, d) for e, d, _ in events]
    assert tail[-1] == ("error", {"error": "The API token was revoked", "code": "UNAUTHORIZED"})
    frames = []
    with contextlib.suppress(simple_websocket.ConnectionClosed):
        while (raw := ws.receive(timeout=20)) is not None:
            frames.append(json.loads(raw))
    assert frames[-1] == {"type": "error", "error": "The API token was revoked", "code": "UNAUTHORIZED"}
    resp.close()
