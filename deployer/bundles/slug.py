"""Slugs: a DNS label made from the deployment's name, so it can never inject into a Caddy matcher."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from deployer.errors import InvalidUpload

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
BASE_MIN, BASE_MAX = 3, 36


def slug_base(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:BASE_MAX].strip("-")
    if len(base) < BASE_MIN:
        raise InvalidUpload(f"name {name[:60]!r} needs at least {BASE_MIN} letters or digits to make a URL")
    return base


def make_slug(name: str, suffix: Callable[[int], str] = secrets.token_hex) -> str:
    """`<base>-<6 hex>`; the suffix makes two deployments of one project distinct."""
    tail = suffix(3).lower()
    if not re.fullmatch(r"[0-9a-f]{6}", tail):
        raise ValueError("slug suffix must be 6 hex characters")
    slug = f"{slug_base(name)}-{tail}"
    assert is_dns_label(slug)
    return slug


def is_dns_label(value: str) -> bool:
    return bool(_LABEL.match(value))
