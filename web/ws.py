"""WebSocket log stream: `/ws/deployments/<id>/logs?after=N` (flask-sock, docs/architecture.md#logs-and-live-streams).

Frames are JSON `{type: hello|log|ready|status|done|error, …}`; the server pings every 25 s and
answers a client's `{"type": "ping"}` (or plain `ping`) with `{"type": "pong"}`. Authentication
happens before the upgrade (a bearer or path token, or the dashboard session from the same origin), so a
refused client gets a plain 401/403 instead of a socket.
"""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import urlsplit

from flask import Flask, request
from flask_sock import ConnectionClosed, Sock

from deployer.errors import DeployerError
from deployer.store import deployments
from web.auth import authenticate, presented_token, token_watch
from web.errors import CsrfRejected
from web.services import services
from web.streams import DbSource, LogStream, ws_frame

WS_PREFIX = "/ws/"
TICK = 1.0  # how often a quiet stream looks at what the client sent


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _before_upgrade() -> None:
    if not request.path.startswith(WS_PREFIX):
        return
    if presented_token() is None and not _same_origin():
        raise CsrfRejected("WebSocket from another origin")  # cross-site WebSocket hijacking
    authenticate()


def _answer(ws: object, raw: object) -> None:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        kind = json.loads(text).get("type") if text.startswith("{") else text.strip()
    except (ValueError, AttributeError):
        kind = None
    if kind == "ping":
        ws.send(json.dumps({"type": "pong"}))  # type: ignore[attr-defined]


def logs(ws: object, deployment_id: str) -> None:
    svc = services()
    send = ws.send  # type: ignore[attr-defined]
    try:
        row = deployments.get_deployment(svc.engine, deployment_id)
        raw_after = request.args.get("after")
        after = int(raw_after) if raw_after not in (None, "") else None
    except (DeployerError, ValueError) as exc:
        send(json.dumps({"type": "error", "message": getattr(exc, "message", "after must be an integer")}))
        return
    sub = svc.hub.subscribe(deployment_id) if svc.hub is not None else None
    stream = LogStream(DbSource(svc.engine, deployment_id), after=after, sub=sub,
                       timing=replace(svc.stream_timing, keepalive=TICK))  # fmt: skip
    try:
        send(json.dumps({"type": "hello", "id": deployment_id, "status": row["status"], "after": after}))
        watch = token_watch()
        for event in stream.events():
            if not watch.live():
                send(json.dumps({"type": "error", "error": "The API token was revoked", "code": "UNAUTHORIZED"}))
                ws.close(1008, "token revoked")  # type: ignore[attr-defined]
                return
            if event.type != "keepalive":
                send(ws_frame(event))
            while (msg := ws.receive(timeout=0)) is not None:  # type: ignore[attr-defined]
                _answer(ws, msg)
        ws.close(1000, "done")  # type: ignore[attr-defined]
    except ConnectionClosed:
        pass
    finally:
        if sub is not None:
            sub.close()


def init_app(app: Flask) -> None:
    sock = Sock(app)
    app.before_request(_before_upgrade)
    sock.route("/ws/deployments/<deployment_id>/logs")(logs)
