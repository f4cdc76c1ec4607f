"""Removing secrets from text that leaves the deployer (error messages, system lines)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_ERROR_LEN = 500
_PATTERNS = (
    re.compile(r"AGE-SECRET-KEY-[0-9A-Z]+"),
    re.compile(r'("?private_key"?\s*[:=]\s*"?)[A-Za-z0-9+/=_-]+'),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
)


def scrub(text: str, secrets: Iterable[str] = (), limit: int = MAX_ERROR_LEN) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    text = _PATTERNS[0].sub("[redacted]", text)
    for pattern in _PATTERNS[1:]:
        text = pattern.sub(r"\1[redacted]", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
