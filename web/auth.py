"""Who is calling: an API token (`Authorization: Bearer <token>`, or the same token as a path prefix
`/t/<token>/…`, see `web.pathtoken`), or a dashboard session made from one.

A session is a signed cookie holding the token's id and a CSRF secret. It authenticates reads
(including EventSource, which cannot send headers); any other method made with it must also carry
the CSRF secret, as a form field or an `X-CSRF-Token` header. Token calls (header or path) need no
CSRF: a browser never attaches that header on its own, and a page that knows the token needs no forgery.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from flask import g, request, session
from sqlalchemy import Engine

from deployer.credentials import bearer, csrf_matches, csrf_secret
from deployer.errors import Unauthorized
from deployer.store import tokens
from traces.recorder.watchers import auth_event
from web.errors import CsrfRejected
from web.pathtoken import ENVIRON_KEY
from web.services import services

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
log = logging.getLogger(__name__)


def bearer_token() -> str | None:
    return bearer(request.headers.get("Authorization", ""))


def path_token() -> str | None:
    """The token of a `/t/<token>/…` request, as `web.pathtoken.PathToken` took it off the path."""
    token = request.environ.get(ENVIRON_KEY)
    return token if isinstance(token, str) else None


def presented_token() -> str | None:
    """The token the caller sent itself (path prefix first, else the header); None for session callers."""
    from_path = path_token()
    return from_path if from_path is not None else bearer_token()


def session_token() -> tokens.TokenInfo | None:
    token_id = session.get("token_id")
    if not isinstance(token_id, int):
        return None
    return tokens.live_token(services().engine, token_id)


def authenticate() -> tokens.TokenInfo:
    """The caller's token, or Unauthorized; session callers of unsafe methods must pass the CSRF check."""
    raw = presented_token()
    if raw is not None:
        info = tokens.verify_token(services().engine, raw.strip())
        if info is None:
            login_outcome(None, via="path" if path_token() is not None else "bearer")
            raise Unauthorized("Invalid or revoked API token")
        g.token = info
        return info
    info = session_token()
    if info is None:
        raise Unauthorized("Missing API token: send Authorization: Bearer <token>, or prefix the path with /t/<token>")
    if request.method not in SAFE_METHODS:
        check_csrf()
    g.token = info
    return info


def csrf_token() -> str:
    return csrf_secret(session, "csrf", 32)


def check_csrf() -> None:
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if not csrf_matches(sent, session.get("csrf")):
        raise CsrfRejected("Missing or wrong CSRF token; reload the page and try again")


def login_outcome(info: tokens.TokenInfo | None, *, via: str) -> None:
    """Failed logins are logged (never the token) and, with the `auth` trace watcher, recorded."""
    if info is None:
        log.warning("refused %s login from %s: unknown or revoked token", via, request.remote_addr)
    auth_event(services().recorder, ok=info is not None, via=via, name=info.name if info else None)


def log_in(raw_token: str) -> tokens.TokenInfo | None:
    info = tokens.verify_token(services().engine, raw_token.strip())
    login_outcome(info, via="dashboard")
    if info is None:
        return None
    session.clear()
    session["token_id"] = info.id
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    return info


def log_out() -> None:
    session.clear()


class TokenWatch:
    """Whether the token behind a long-lived stream is still live: a stream outlives the request that
    authenticated it, so a revoked token must end it. Looked up at most every `every` seconds."""

    def __init__(self, engine: Engine, token_id: int, *, every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.engine, self.token_id, self.every, self.clock = engine, token_id, every, clock
        self._checked = clock()
        self._live = True

    def live(self) -> bool:
        if self._live and self.clock() - self._checked >= self.every:
            self._checked = self.clock()
            self._live = tokens.live_token(self.engine, self.token_id) is not None
        return self._live


def token_watch() -> TokenWatch:
    return TokenWatch(services().engine, g.token.id)
