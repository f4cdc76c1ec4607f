"""Signed ingest (docs/architecture.md#trace-runtime), byte-compatible with the reference: what a client sends
and the exact order in which the trace runtime checks it. Pure: the clock and the nonce store are passed in.

Canonical string: METHOD, path, search, timestamp, nonce and the body's SHA-256 hex, joined by
`\\n`; the signature is the hex HMAC-SHA256 of it under the shared secret. Failure codes and statuses
are the reference's: 401 for EXPIRED and REPLAYED, 403 for every other refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

HEADERS = ("x-zt-key-id", "x-zt-timestamp", "x-zt-nonce", "x-zt-body-sha256", "x-zt-signature")
_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def parse_timestamp(raw: str) -> int | None:
    """The timestamp as the reference reads it (JavaScript `parseInt(raw, 10)`): the leading integer,
    surrounding text ignored; None when there is none. The canonical string then carries this number,
    not the header's text."""
    m = _LEADING_INT.match(raw)
    return int(m.group(1)) if m else None


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical(method: str, path: str, search: str, timestamp: str, nonce: str, body_hash: str) -> str:
    return "\n".join([method.upper(), path, search, timestamp, nonce, body_hash])


def signature(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def sign(*, method: str, path: str, search: str, body: bytes, key_id: str, secret: str, now_ms: int,
         nonce: str | None = None) -> dict[str, str]:  # fmt: skip
    """The five headers of a signed request."""
    nonce = nonce or secrets.token_hex(16)
    digest, ts = body_sha256(body), str(now_ms)
    return {
        "x-zt-key-id": key_id,
        "x-zt-timestamp": ts,
        "x-zt-nonce": nonce,
        "x-zt-body-sha256": digest,
        "x-zt-signature": signature(secret, canonical(method, path, search, ts, nonce, digest)),
    }


@dataclass(frozen=True)
class Rejection:
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    search: str  # the query string with its leading "?", or ""
    headers: Mapping[str, str]  # lower-case names
    body: bytes


def verify(req: Request, *, key_id: str, secret: str, window_ms: int, now_ms: int,
           remember_nonce: Callable[[str, int], bool]) -> Rejection | None:  # fmt: skip
    """None when the request is genuine; else why not. Checks run in this order:
    headers, timestamp, window, body hash, key id, signature (constant time), nonce unseen.
    `remember_nonce(key, expires_ms)` stores `<key id>:<nonce>` and says whether it was new.

    One deliberate difference: a header sent empty counts as missing (the reference only refuses
    an absent one); no genuine sender sends an empty value."""
    missing = [h for h in HEADERS if not req.headers.get(h, "").strip()]
    if missing:
        return Rejection(403, "MISSING_HEADER", f"missing signing headers: {', '.join(missing)}")
    ts = parse_timestamp(req.headers["x-zt-timestamp"])
    if ts is None:
        return Rejection(403, "INVALID_TIMESTAMP", "x-zt-timestamp must be milliseconds since the epoch")
    if abs(now_ms - ts) > window_ms:
        return Rejection(401, "EXPIRED", "request timestamp is outside the signing window")
    sent_hash = req.headers["x-zt-body-sha256"]
    if not hmac.compare_digest(sent_hash.encode(), body_sha256(req.body).encode()):
        return Rejection(403, "INVALID_BODY_SHA", "x-zt-body-sha256 does not match the body")
    sent_key = req.headers["x-zt-key-id"]
    if not key_id or not hmac.compare_digest(sent_key.encode(), key_id.encode()):
        return Rejection(403, "UNKNOWN_KEY", "unknown key id")
    nonce = req.headers["x-zt-nonce"]
    expected = signature(secret, canonical(req.method, req.path, req.search, str(ts), nonce, sent_hash))
    if not hmac.compare_digest(req.headers["x-zt-signature"].encode(), expected.encode()):
        return Rejection(403, "INVALID_SIGNATURE", "signature does not match")
    if not remember_nonce(f"{sent_key}:{nonce}", ts + window_ms):
        return Rejection(401, "REPLAYED", "nonce already used")
    return None
