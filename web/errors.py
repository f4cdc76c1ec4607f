"""The one place where errors become HTTP: `{"error": "<readable message>", "code": "<CODE>"}` for the
API and the WebSocket upgrade (DESIGN §10: `error` is the string the real `zynd deploy` prints, `code`
is for machines), a friendly page for the dashboard; never a stack trace to the user."""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from deployer.errors import DeployerError

log = logging.getLogger(__name__)


def error_body(code: str, message: str) -> dict[str, str]:
    """The API's error shape; codes are UPPER_SNAKE_CASE whatever the raiser spelled."""
    return {"error": message, "code": code.upper()}


def error_response(status: int, code: str, message: str) -> Response:
    resp = jsonify(error_body(code, message))
    resp.status_code = status
    return resp


def wants_json() -> bool:
    return request.path.startswith(("/api", "/ws/"))


def error_page(status: int, title: str, message: str) -> Response:
    resp = Response(render_template("error.html", status=status, title=title, message=message, csrf=None))
    resp.status_code = status
    return resp


def _reply(status: int, code: str, message: str, title: str) -> Response:
    return error_response(status, code, message) if wants_json() else error_page(status, title, message)


def _deployer_error(exc: DeployerError) -> Response:
    if exc.status >= 500 and exc.status != 503:
        log.error("deployer error on %s: %s", request.path, exc.message)
    return _reply(exc.status, exc.code, exc.message, exc.code.replace("_", " ").capitalize())


def _http_error(exc: HTTPException) -> Response:
    if exc.code == 413:
        return _reply(413, "TOO_LARGE", "Request body is larger than the upload limit", "Too large")
    code = re.sub(r"[^A-Z0-9]+", "_", (exc.name or "error").upper().replace("'", "")).strip("_")
    return _reply(exc.code or 500, code, exc.description or exc.name or "error", exc.name or "Error")


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _reply(500, "INTERNAL", "Internal error; the operator's log has the details", "Something went wrong")


def init_app(app: Flask) -> None:
    app.register_error_handler(DeployerError, _deployer_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
