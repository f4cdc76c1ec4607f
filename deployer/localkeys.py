"""Values an installation makes once and keeps in its data root: the session key when
`DEPLOYER_SECRET_KEY` is unset (there is no built-in key) and the installation id. No third-party
imports: the slim trace runtime uses this too."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from deployer.settings import Settings


def ensure_local_value(path: Path, make: Callable[[], str]) -> str:
    """A value kept in a mode-600 file in the data root, made on first use. Several processes may
    start together: the value is written to a private temporary file and hard-linked into place, so
    the first one wins and nobody ever reads a half-written file."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(make() + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def session_key(settings: Settings) -> str:
    """`DEPLOYER_SECRET_KEY`, or a random key made once in the data root: there is no built-in key."""
    return settings.secret_key or ensure_local_value(settings.data_root / "session.key", lambda: secrets.token_hex(32))


def installation_id(settings: Settings) -> str:
    """Names what this installation owns on a shared Docker engine (labels on containers, images);
    `DEPLOYER_INSTALLATION_ID`, or one made once in the data root."""
    return settings.installation_id or ensure_local_value(
        settings.data_root / "installation-id", lambda: secrets.token_hex(6)
    )


def private_data_root(settings: Settings) -> Path:
    """The data root, made (or narrowed to) mode 700: it holds bundles, keys and decrypted keypairs."""
    root = settings.data_root
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if root.stat().st_mode & 0o077:
        root.chmod(0o700)
    return root
