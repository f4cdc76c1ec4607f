"""Reading the API's answers in tests: every error is `{"error": "<message>", "code": "<CODE>"}`."""

from __future__ import annotations

import re

import requests

CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def error_of(resp: requests.Response, status: int, code: str | None = None) -> str:
    """Asserts the status and the error shape (exactly those two keys, a readable string, an
    UPPER_SNAKE code); returns the message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "code"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert CODE.match(body["code"]), body
    if code is not None:
        assert body["code"] == code, body
    return str(body["error"])
