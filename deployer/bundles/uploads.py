"""Accepting an upload: validate everything first, then store ciphertext and insert one `queued` row.

Nothing is written for a refused upload: the bundle is unpacked only into a temporary directory that
is always removed, and the encrypted files are unlinked again if the row cannot be inserted.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from deployer.bundles.archive import Limits, extract
from deployer.bundles.envblock import registry_or_default
from deployer.bundles.keypair import Keypair, parse_keypair
from deployer.bundles.rules import FORBIDDEN_ENV_KEYS, BundleInfo, inspect_bundle
from deployer.bundles.secrets import MasterKey, seal_env, write_encrypted
from deployer.bundles.slug import make_slug
from deployer.errors import InvalidUpload, SlugTaken, UploadTooLarge
from deployer.settings import Settings
from deployer.store.admission import admitting
from deployer.store.loglines import append_status, append_system
from deployer.store.models import utcnow
from deployer.store.rows import DEPLOYMENT as _deployment
from deployer.store.states import Status

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENV_VARS = 200
MAX_ENV_VALUE = 8192


@dataclass
class Upload:
    """One upload as the web layer received it; `bundle` is a seekable binary stream."""

    bundle: IO[bytes]
    keypair: bytes | None = None
    name: str | None = None
    runtime: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None  # `zynd deploy --image <ref>` asks for a prebuilt image; noted, not used


MAX_IMAGE_REF = 200


@dataclass(frozen=True)
class Accepted:
    id: str
    slug: str
    status: str
    runtime: str  # detected from the bundle at upload
    url: str | None
    image: str | None = None  # the built image ref; None until the building stage has made it


def parse_env(raw: str | None) -> dict[str, str]:
    """The `env` form field: a JSON object of string values."""
    if raw is None or not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:
        raise InvalidUpload("env must be a JSON object of string values") from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise InvalidUpload("env must be a JSON object of string values")
    return check_env(doc)


def parse_env_lines(raw: str | None) -> dict[str, str]:
    """`KEY=VALUE` lines, as typed into the dashboard (blank lines and `#` comments skipped)."""
    env: dict[str, str] = {}
    for n, line in enumerate((raw or "").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise InvalidUpload(f"env line {n} has no '=': write KEY=VALUE")
        env[key.strip()] = value
    return check_env(env)


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    if len(env) > MAX_ENV_VARS:
        raise InvalidUpload(f"env has {len(env)} variables; the limit is {MAX_ENV_VARS}")
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise InvalidUpload(f"env: {key[:60]!r} is not a valid variable name")
        if key in FORBIDDEN_ENV_KEYS:
            raise InvalidUpload(f"env sets {key}; developer keys must never be deployed")
        if len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise InvalidUpload(f"env: the value of {key} is too long or contains NUL")
    return dict(env)


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def inspect_upload(upload: Upload, settings: Settings) -> tuple[BundleInfo, Keypair | None]:
    """Every check of docs/architecture.md#uploads, in a temporary directory that is always removed."""
    size = _size(upload.bundle)
    if size > settings.max_upload_bytes:
        raise UploadTooLarge(f"project.zip is {size} bytes; the limit is {settings.max_upload_bytes}")
    limits = Limits(settings.max_unpacked_bytes, settings.max_files)
    scratch = Path(tempfile.mkdtemp(prefix="deployer-upload-"))
    try:
        files = extract(upload.bundle, scratch, limits)
        info = inspect_bundle(scratch, files, name=upload.name, runtime=upload.runtime)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if upload.keypair is None and info.is_zynd:
        raise InvalidUpload(f"keypair.json is required for a bundle with {info.config_file}")
    keypair = parse_keypair(upload.keypair) if upload.keypair is not None else None
    return info, keypair


def bundle_path(settings: Settings, deployment_id: str) -> Path:
    return settings.bundles_dir / f"{deployment_id}.zip.age"


def keypair_path(settings: Settings, deployment_id: str) -> Path:
    return settings.keys_dir / f"{deployment_id}.keypair.json.age"


def public_url(settings: Settings, slug: str) -> str | None:
    if settings.skip_caddy:
        return None  # known once a port is allocated: http://localhost:<port>
    return f"{settings.public_scheme}://{slug}.{settings.public_host_suffix}"


def _queued_notes(image: str | None) -> list[str]:
    if not image:
        return []
    return [f"image {image[:MAX_IMAGE_REF]!r} was asked for; this deployer builds each deployment "
            "from its runtime base image, so the request is not used"]  # fmt: skip


def _insert(
    engine: Engine, row: Mapping[str, object], settings: Settings, now: datetime, image: str | None = None
) -> None:
    with admitting(engine, settings.max_active) as conn:
        conn.execute(insert(_deployment).values(**row))
        append_status(conn, str(row["id"]), Status.QUEUED, f"{row['runtime']} {row['entity_type']} uploaded", now=now)
        if image:
            append_system(conn, str(row["id"]), *_queued_notes(image), now=now)


def accept_upload(
    upload: Upload,
    *,
    settings: Settings,
    engine: Engine,
    master_key: MasterKey,
    now: Callable[[], datetime] = utcnow,
    slug_suffix: Callable[[int], str] = secrets.token_hex,
) -> Accepted:
    info, keypair = inspect_upload(upload, settings)
    env = seal_env(master_key, check_env(upload.env))
    deployment_id = str(uuid.uuid4())
    slug = make_slug(info.name, slug_suffix)
    at = now()
    row = {
        "id": deployment_id, "name": info.name, "slug": slug, "entity_type": info.entity_type,
        "runtime": info.runtime, "status": str(Status.QUEUED), "host_url": public_url(settings, slug),
        "registry_url": registry_or_default(settings.registry_url), "env": env,
        "public_key_b64": keypair.public_key if keypair else None,
        "memory_mb": settings.container_mem_mb, "cpu_millis": settings.container_cpu_millis,
        "restart_count": 0, "log_seq": 0, "created_at": at, "updated_at": at,
    }  # fmt: skip
    written: list[Path] = []
    try:
        upload.bundle.seek(0)
        written.append(bundle_path(settings, deployment_id))
        write_encrypted(master_key, upload.bundle.read(), written[-1])
        if keypair is not None:
            written.append(keypair_path(settings, deployment_id))
            write_encrypted(master_key, upload.keypair or b"", written[-1])
        _insert(engine, row, settings, at, (upload.image or "").strip() or None)
    except IntegrityError:
        _unlink(written)
        raise SlugTaken(f"slug {slug} is taken; try again or choose another name") from None
    except BaseException:
        _unlink(written)
        raise
    return Accepted(deployment_id, slug, str(Status.QUEUED), info.runtime, row["host_url"])  # type: ignore[arg-type]


def _unlink(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
