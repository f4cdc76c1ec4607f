"""Path-scoped auth (docs/architecture.md#http-api): `/t/<token>/api/…` works exactly like `Authorization:
Bearer <token>`, so a client that cannot send a header (the unmodified `zynd deploy --deployer <base>/t/<token>`) can
deploy; `/t/<token>/<anything else>` (the `/d/<id>` link that CLI prints) redirects without the prefix.

The token must never be written anywhere. `PathToken` is the outermost WSGI layer: it moves the token
out of `PATH_INFO` into the environ before Flask routes the request, so routes, the trace recorder's
request watcher and error messages only ever see `/api/…`; and it masks, in place, the copies of the
raw request line the server keeps in the same environ (gunicorn builds its access-log line from
`environ["RAW_URI"]` after the response). Servers that log their own copy of the request line
(werkzeug's development server; gunicorn's error paths, which rebuild the environ) are covered by
`MaskTokens`, a logging filter on their loggers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

PREFIX = "/t/"
ENVIRON_KEY = "deployer.path_token"
MASK = "***"
_IN_TEXT = re.compile(r"/t/[^/\s?#\"']*")
_ENVIRON_COPIES = ("RAW_URI", "REQUEST_URI", "HTTP_REFERER")
SERVER_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def mask(text: str) -> str:
    """`/t/<anything>` becomes `/t/***` wherever it appears in `text`."""
    return _IN_TEXT.sub(PREFIX + MASK, text) if PREFIX in text else text


def split(path: str) -> tuple[str | None, str]:
    """`/t/<token>/rest` → (token, "/rest"); any other path → (None, path). The token may be empty."""
    if not path.startswith(PREFIX):
        return None, path
    token, slash, rest = path[len(PREFIX) :].partition("/")
    return token, slash + rest or "/"


class PathToken:
    """WSGI middleware: takes `/t/<token>` off the path (kept in `environ[ENVIRON_KEY]`), masks the rest."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        token, path = split(environ.get("PATH_INFO", ""))
        if token is not None:
            environ[ENVIRON_KEY] = token
            environ["PATH_INFO"] = path
        for key in _ENVIRON_COPIES:
            value = environ.get(key)
            if isinstance(value, str):
                environ[key] = mask(value)
        return self.app(environ, start_response)


class MaskTokens(logging.Filter):
    """Masks path tokens in a log record's message before any handler (or the trace log watcher) sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_logger(logger: logging.Logger) -> None:
    """Adds the filter once (app factories and server loggers may run more than once per process)."""
    if not any(isinstance(f, MaskTokens) for f in logger.filters):
        logger.addFilter(MaskTokens())


def mask_server_logs() -> None:
    for name in SERVER_LOGGERS:
        mask_logger(logging.getLogger(name))
