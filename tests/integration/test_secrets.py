from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from deployer.bundles.secrets import ensure_master_key, load_master_key, read_encrypted, write_encrypted
from deployer.errors import SecretsError


def test_the_master_identity_is_created_once_with_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "age.key"
    first = ensure_master_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(ensure_master_key(path).recipient) == str(first.recipient)
    assert "AGE-SECRET-KEY" not in repr(first)


def test_a_world_readable_identity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "age.key"
    ensure_master_key(path)
    path.chmod(0o644)
    with pytest.raises(SecretsError, match="chmod 600"):
        load_master_key(path)


def test_files_we_encrypt_decrypt_with_the_stock_age_cli(tmp_path: Path) -> None:
    key = ensure_master_key(tmp_path / "age.key")
    secret = b'{"public_key": "cHVi", "private_key": "c2VjcmV0"}'
    write_encrypted(key, secret, tmp_path / "kp.age")
    assert stat.S_IMODE((tmp_path / "kp.age").stat().st_mode) == 0o600
    assert secret not in (tmp_path / "kp.age").read_bytes()
    out = subprocess.run(
        ["age", "-d", "-i", str(tmp_path / "age.key"), str(tmp_path / "kp.age")], capture_output=True, check=True
    )
    assert out.stdout == secret


def test_files_the_age_cli_encrypts_to_our_recipient_decrypt_here(tmp_path: Path) -> None:
    key = ensure_master_key(tmp_path / "age.key")
    (tmp_path / "plain").write_bytes(b"hello from age")
    subprocess.run(
        ["age", "-r", str(key.recipient), "-o", str(tmp_path / "c.age"), str(tmp_path / "plain")], check=True
    )
    assert read_encrypted(key, tmp_path / "c.age") == b"hello from age"


def test_ciphertext_for_another_identity_gives_a_clear_error(tmp_path: Path) -> None:
    ours, theirs = ensure_master_key(tmp_path / "a.key"), ensure_master_key(tmp_path / "b.key")
    write_encrypted(theirs, b"x", tmp_path / "x.age")
    with pytest.raises(SecretsError, match="not encrypted to this deployer"):
        read_encrypted(ours, tmp_path / "x.age")
