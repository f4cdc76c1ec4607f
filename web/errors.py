"""The one place where errors become HTTP: `{"error": "<readable message>", "code": "<CODE>"}` for the
API and the WebSocket upgrade (docs/architecture.md#errors: `error` is the string the real `zynd deploy` prints, `code`
is for machines), a friendly page for the dashboard; never a stack trace to the user. The domain's
errors carry no HTTP: `STATUS` below says which status each kind of error answers with."""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from deployer.errors import (
    AtCapacity,
    Busy,
    Conflict,
    DeployerError,
    InvalidRequest,
    InvalidUpload,
    NotFound,
    PortExhausted,
    SlugTaken,
    Unauthorized,
    Unavailable,
    UploadTooLarge,
)

log = logging.getLogger(__name__)


class CsrfRejected(DeployerError):
    """A state-changing request without the session's CSRF token, or a WebSocket from another origin:
    the one error only the web app raises."""

    code = "CSRF"


# The HTTP status of each kind of error; a subclass answers as its nearest listed ancestor, and an
# error listed nowhere (a failed build, an unreachable Docker) is the server's trouble: 500.
STATUS: dict[type[DeployerError], int] = {
    InvalidUpload: 400,
    InvalidRequest: 400,
    Unauthorized: 401,
    CsrfRejected: 403,
    NotFound: 404,
    SlugTaken: 409,
    Conflict: 409,
    Busy: 409,
    UploadTooLarge: 413,
    AtCapacity: 503,
    Unavailable: 503,
    PortExhausted: 503,
}


def status_of(exc: DeployerError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, message: str) -> dict[str, str]:
    """The API's error shape; codes are UPPER_SNAKE_CASE (the domain's are spelled so in deployer.errors)."""
    return {"error": message, "code": code}


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
    status = status_of(exc)
    if status >= 500 and status != 503:
        log.error("deployer error on %s: %s", request.path, exc.message)
    return _reply(status, exc.code, exc.message, exc.code.replace("_", " ").capitalize())


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
