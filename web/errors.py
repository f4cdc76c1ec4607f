"""The one place where errors become HTTP: `{"error": {"code", "message"}}` for the API."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from deployer.errors import DeployerError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> Response:
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def _deployer_error(exc: DeployerError) -> Response:
    if exc.status >= 500 and exc.status != 503:
        log.error("deployer error on %s: %s", request.path, exc.message)
    return error_response(exc.status, exc.code, exc.message)


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if not request.path.startswith("/api"):
        return exc
    code = (exc.name or "error").lower().replace(" ", "_")
    if exc.code == 413:
        return error_response(413, "too_large", "Request body is larger than the upload limit")
    return error_response(exc.code or 500, code, exc.description or exc.name or "error")


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal", "Internal error; the operator's log has the details")


def init_app(app: Flask) -> None:
    app.register_error_handler(DeployerError, _deployer_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
