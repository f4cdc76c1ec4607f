"""The age master identity and the encrypted bundle/keypair files (pyrage; readable by the `age` CLI)."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path

import pyrage

from deployer.errors import SecretsError


class MasterKey:
    """The master identity. Its repr never shows the secret."""

    def __init__(self, identity: pyrage.x25519.Identity) -> None:
        self._identity = identity
        self.recipient = identity.to_public()

    def __repr__(self) -> str:
        return f"MasterKey(recipient={self.recipient})"

    def encrypt(self, data: bytes) -> bytes:
        return bytes(pyrage.encrypt(data, [self.recipient]))

    def decrypt(self, data: bytes) -> bytes:
        try:
            return bytes(pyrage.decrypt(data, [self._identity]))
        except pyrage.DecryptError:
            raise SecretsError("could not decrypt: not encrypted to this deployer's master key") from None


def _identity_file_text(identity: pyrage.x25519.Identity) -> str:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"# created: {created}\n# public key: {identity.to_public()}\n{identity}\n"


def ensure_master_key(path: Path) -> MasterKey:
    """Load the identity at `path`, creating it (mode 600, age-keygen format) on first start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_master_key(path)
    identity = pyrage.x25519.Identity.generate()
    with os.fdopen(fd, "w") as fh:
        fh.write(_identity_file_text(identity))
    return MasterKey(identity)


def load_master_key(path: Path) -> MasterKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretsError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    keys = [ln for ln in lines if ln.startswith("AGE-SECRET-KEY-")]
    if len(keys) != 1:
        raise SecretsError(f"{path} does not hold exactly one age identity")
    try:
        return MasterKey(pyrage.x25519.Identity.from_str(keys[0]))
    except pyrage.IdentityError:
        raise SecretsError(f"{path} holds an invalid age identity") from None


def write_encrypted(key: MasterKey, data: bytes, path: Path) -> None:
    """Write ciphertext only; the file is created new (never overwritten) with mode 600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.encrypt(data))


def read_encrypted(key: MasterKey, path: Path) -> bytes:
    return key.decrypt(path.read_bytes())



SEALED = "age:"  # prefix of an env value stored encrypted


def seal_env(key: MasterKey, env: dict[str, str]) -> dict[str, str]:
    """The user's env values encrypted at rest like the bundle (names stay readable: the API lists them)."""
    return {k: SEALED + base64.b64encode(key.encrypt(v.encode())).decode() for k, v in env.items()}


def open_env(key: MasterKey, stored: dict[str, str]) -> dict[str, str]:
    """The env values as given; a value stored before sealing existed is taken as it is."""
    return {k: key.decrypt(base64.b64decode(v[len(SEALED) :])).decode() if v.startswith(SEALED) else v
            for k, v in stored.items()}  # fmt: skip
