"""The uploaded keypair: a JSON object with base64 `public_key` and `private_key`.

Error messages name the field and the rule, never the value: a private key must not reach a response,
a log line or an exception message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from deployer.errors import InvalidUpload

MAX_BYTES = 64 * 1024
_B64 = re.compile(r"^[A-Za-z0-9+/=_-]+$")


@dataclass(frozen=True)
class Keypair:
    public_key: str
    private_key: str

    def __repr__(self) -> str:  # keeps the private key out of tracebacks and logs
        return f"Keypair(public_key={self.public_key[:12]!r}…, private_key=<hidden>)"


def parse_keypair(raw: bytes) -> Keypair:
    if len(raw) > MAX_BYTES:
        raise InvalidUpload(f"keypair.json is larger than {MAX_BYTES} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidUpload("keypair.json is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidUpload("keypair.json must be a JSON object")
    values = {}
    for key in ("public_key", "private_key"):
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidUpload(f"keypair.json needs a non-empty string {key}")
        if len(value) > 4096 or not _B64.match(value):
            raise InvalidUpload(f"keypair.json {key} must be base64 ([A-Za-z0-9+/=_-])")
        values[key] = value
    if len(values["public_key"]) > 200:
        raise InvalidUpload("keypair.json public_key is longer than 200 characters")
    return Keypair(**values)
