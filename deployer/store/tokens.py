"""API tokens. Only a SHA-256 of each token is stored; the token itself is shown once, at creation.

Tokens are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from deployer.errors import Conflict, InvalidRequest, NotFound
from deployer.store.db import reading
from deployer.store.models import utcnow
from deployer.store.rows import API_TOKENS as _tokens

PREFIX = "dpl_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, name: str, *, now: Callable[[], datetime] = utcnow) -> tuple[TokenInfo, str]:
    if not _NAME.match(name):
        raise InvalidRequest("token name: 1-100 letters, digits, spaces, '.', '_' or '-'")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            row_id = conn.execute(
                insert(_tokens).values(name=name, token_hash=hash_token(token), created_at=now())
            ).inserted_primary_key
    except IntegrityError:
        raise Conflict(f"a token named {name!r} exists already") from None
    assert row_id is not None
    return get_token(engine, str(row_id[0])), token


def _row(r: object) -> TokenInfo:
    m = r._mapping  # type: ignore[attr-defined]
    return TokenInfo(m["id"], m["name"], m["created_at"], m["last_used_at"], m["revoked_at"])


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(_tokens).order_by(_tokens.c.id))]


def get_token(engine: Engine, id_or_name: str) -> TokenInfo:
    cond = _tokens.c.id == int(id_or_name) if id_or_name.isdigit() else _tokens.c.name == id_or_name
    with engine.connect() as conn:
        r = conn.execute(select(_tokens).where(cond)).first()
    if r is None:
        raise NotFound(f"no token {id_or_name!r}")
    return _row(r)


def revoke_token(engine: Engine, id_or_name: str, *, now: Callable[[], datetime] = utcnow) -> TokenInfo:
    info = get_token(engine, id_or_name)
    with engine.begin() as conn:
        conn.execute(
            update(_tokens).where(_tokens.c.id == info.id, _tokens.c.revoked_at.is_(None)).values(revoked_at=now())
        )
    return get_token(engine, str(info.id))


def verify_token(engine: Engine, token: str, *, now: Callable[[], datetime] = utcnow) -> TokenInfo | None:
    """The live token matching `token`, its last use recorded; None when unknown or revoked."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    query = select(_tokens).where(_tokens.c.token_hash == digest, _tokens.c.revoked_at.is_(None))
    with reading(engine) as conn:  # a read on every API call: no transaction unless last use is stale
        r = conn.execute(query).first()
    if r is None:
        return None
    at = now()
    if _stale(r.last_used_at, at):  # a write per request would serialise every API call on this row
        with engine.begin() as conn:
            conn.execute(update(_tokens).where(_tokens.c.id == r.id).values(last_used_at=at))
    return _row(r)


LAST_USED_RESOLUTION = timedelta(seconds=60)


def _stale(last_used: datetime | None, now: datetime) -> bool:
    if last_used is None:
        return True
    aware = last_used if last_used.tzinfo else last_used.replace(tzinfo=UTC)
    return now - aware >= LAST_USED_RESOLUTION


def live_token(engine: Engine, token_id: int) -> TokenInfo | None:
    """The token behind a dashboard session, while it is not revoked."""
    with engine.connect() as conn:
        r = conn.execute(select(_tokens).where(_tokens.c.id == token_id, _tokens.c.revoked_at.is_(None))).first()
    return None if r is None else _row(r)
