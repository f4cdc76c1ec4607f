"""How a caller's credentials are read and compared, shared by the web app (`web.auth`) and the trace
runtime, which log in and guard forms the same way with different tokens and session keys. Standard
library only, and no Flask: the session is any mutable mapping, so the slim trace runtime can use it."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value; None for another scheme or none."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def csrf_secret(session: MutableMapping[str, Any], key: str, nbytes: int) -> str:
    """The session's CSRF secret under `key`, made on first use."""
    if key not in session:
        session[key] = secrets.token_urlsafe(nbytes)
    return str(session[key])


def csrf_matches(sent: object, expected: object) -> bool:
    """Whether a form field or header carries the session's CSRF secret, in constant time; a session
    without one matches nothing."""
    return bool(expected) and hmac.compare_digest(str(sent), str(expected))
