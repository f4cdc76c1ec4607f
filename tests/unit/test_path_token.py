"""The path-token WSGI layer and log filter, without a server."""

from __future__ import annotations

import logging
from typing import Any

from web.pathtoken import ENVIRON_KEY, MaskTokens, PathToken, mask, split

TOKEN = "dpl_AbC-_123"


def test_the_token_comes_off_the_path_and_an_empty_one_counts_as_given() -> None:
    assert split(f"/t/{TOKEN}/api/deployments") == (TOKEN, "/api/deployments")
    assert split(f"/t/{TOKEN}") == (TOKEN, "/")
    assert split("/t//api/x") == ("", "/api/x")
    assert split("/trace/api/entries") == (None, "/trace/api/entries")
    assert split("/api/t/x") == (None, "/api/t/x")


def test_every_copy_of_the_request_line_in_the_environ_is_masked_before_the_app_runs() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return [b""]

    uri = f"/t/{TOKEN}/api/deployments?x=1"
    environ = {"PATH_INFO": f"/t/{TOKEN}/api/deployments", "RAW_URI": uri, "REQUEST_URI": uri,
               "HTTP_REFERER": f"https://h/t/{TOKEN}/d/1"}  # fmt: skip
    PathToken(app)(environ, lambda *a: None)
    assert seen[ENVIRON_KEY] == TOKEN and seen["PATH_INFO"] == "/api/deployments"
    assert seen["RAW_URI"] == seen["REQUEST_URI"] == "/t/***/api/deployments?x=1"
    assert seen["HTTP_REFERER"] == "https://h/t/***/d/1"
    assert TOKEN not in repr({k: v for k, v in seen.items() if k != ENVIRON_KEY})
    assert environ["RAW_URI"] == "/t/***/api/deployments?x=1"  # in place: gunicorn logs from this dict


def test_a_path_without_a_token_is_left_alone() -> None:
    seen: dict[str, Any] = {}
    PathToken(lambda environ, sr: seen.update(environ) or [])({"PATH_INFO": "/d/1", "RAW_URI": "/d/1"}, None)
    assert ENVIRON_KEY not in seen and seen["PATH_INFO"] == "/d/1"


def test_log_records_are_masked_whatever_their_arguments() -> None:
    records = [
        logging.LogRecord("werkzeug", logging.INFO, "", 0, '%s "%s" %s', ("1.2.3.4", f"GET /t/{TOKEN}/x", 200), None),
        logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "%(r)s", ({"r": f"GET /t/{TOKEN}/api"},), None),
        logging.LogRecord("gunicorn.error", logging.WARNING, "", 0, f"bad line '/t/{TOKEN}\x7f'", None, None),
    ]
    for record in records:
        assert MaskTokens().filter(record)
        assert TOKEN not in record.getMessage() and "/t/***" in record.getMessage()
    assert mask("no tokens here /trace/t") == "no tokens here /trace/t"
