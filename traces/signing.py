"""Signed ingest (DESIGN §12), byte-compatible with the reference: what a client sends and the exact
order in which the trace runtime checks it. Pure: the clock and the nonce store are passed in.

Canonical string: METHOD, path, search, timestamp, nonce and the body's SHA-256 hex, joined by
`\\n`; the signature is the hex HMAC-SHA256 of it under the shared secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

HEADERS = ("x-zt-key-id", "x-zt-timestamp", "x-zt-nonce", "x-zt-body-sha256", "x-zt-signature")


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
    """None when the request is genuine; else why not. Checks run in the order of DESIGN §12:
    headers, timestamp, window, body hash, key id, signature (constant time), nonce unseen.
    `remember_nonce(nonce, expires_ms)` stores the nonce and says whether it was new."""
    missing = [h for h in HEADERS if not req.headers.get(h)]
    if missing:
        return Rejection(403, "MISSING_HEADERS", f"missing signature headers: {', '.join(missing)}")
    ts = req.headers["x-zt-timestamp"]
    if not ts.isdigit():
        return Rejection(403, "INVALID_TIMESTAMP", "x-zt-timestamp must be milliseconds since the epoch")
    if abs(now_ms - int(ts)) > window_ms:
        return Rejection(401, "EXPIRED", "request timestamp is outside the signing window")
    if not hmac.compare_digest(req.headers["x-zt-body-sha256"], body_sha256(req.body)):
        return Rejection(403, "BODY_HASH_MISMATCH", "x-zt-body-sha256 does not match the body")
    if not hmac.compare_digest(req.headers["x-zt-key-id"], key_id):
        return Rejection(403, "UNKNOWN_KEY", "unknown key id")
    expected = signature(secret, canonical(req.method, req.path, req.search, ts, req.headers["x-zt-nonce"],
                                           req.headers["x-zt-body-sha256"]))  # fmt: skip
    if not hmac.compare_digest(req.headers["x-zt-signature"], expected):
        return Rejection(403, "INVALID_SIGNATURE", "signature does not match")
    if not remember_nonce(req.headers["x-zt-nonce"], int(ts) + window_ms):
        return Rejection(401, "REPLAYED", "nonce already used")
    return None
