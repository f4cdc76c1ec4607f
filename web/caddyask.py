"""`GET /caddy/ask?domain=<host>`: Caddy's on-demand TLS gate (docs/architecture.md#routing). 200 lets Caddy get a
certificate for the host; anything else refuses it. No auth (Caddy sends none); it says no more than
whether a host is served, which its URL says anyway."""

from __future__ import annotations

from flask import Blueprint, Response, request

from deployer.lifecycle.caddy import ASK_PATH
from deployer.lifecycle.tls import may_have_certificate
from web.services import services

bp = Blueprint("caddy_ask", __name__)


@bp.get(ASK_PATH)
def ask() -> Response:
    svc = services()
    host = request.args.get("domain", "")
    if host and may_have_certificate(svc.engine, svc.settings, host):
        return Response("ok\n", 200, mimetype="text/plain")
    return Response("not served here\n", 404, mimetype="text/plain")
