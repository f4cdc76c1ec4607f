"""Where a deployment's decrypted files live on the host, and their removal.

`work/<id>/context/app` is the unpacked bundle (the image build context); `work/<id>/keypair.json` is
the decrypted keypair, outside the build context so it can never end up in an image, and present only
while the container exists.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from deployer.bundles.secrets import MasterKey, read_encrypted
from deployer.bundles.uploads import keypair_path as encrypted_keypair_path
from deployer.settings import Settings


def root(settings: Settings, deployment_id: str) -> Path:
    return settings.work_dir / deployment_id


def context_dir(settings: Settings, deployment_id: str) -> Path:
    return root(settings, deployment_id) / "context"


def app_dir(settings: Settings, deployment_id: str) -> Path:
    return context_dir(settings, deployment_id) / "app"


def keypair_file(settings: Settings, deployment_id: str) -> Path:
    return root(settings, deployment_id) / "keypair.json"


def write_keypair(settings: Settings, key: MasterKey, deployment_id: str, *, owner: int | None = None) -> Path | None:
    """Decrypt the keypair for the container's read-only mount, readable by `owner` (the container's
    uid) and no one else; None when the deployment has none."""
    source = encrypted_keypair_path(settings, deployment_id)
    if not source.exists():
        return None
    target = keypair_file(settings, deployment_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as fh:
        if owner is not None and os.geteuid() == 0:
            os.fchown(fh.fileno(), owner, owner)  # before the key is written: never readable by anyone else
        fh.write(read_encrypted(key, source))
    return target


def remove_keypair(settings: Settings, deployment_id: str) -> None:
    keypair_file(settings, deployment_id).unlink(missing_ok=True)


def remove(settings: Settings, deployment_id: str) -> None:
    shutil.rmtree(root(settings, deployment_id), ignore_errors=True)
