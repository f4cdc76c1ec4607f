"""Zipping a project folder for upload, honouring the skipped folders and `.deployerignore`.

The keypair is never packed into the bundle: it travels as its own (encrypted-at-rest) field.
"""

from __future__ import annotations

import fnmatch
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from deployer.bundles.archive import SKIPPED_DIRS

IGNORE_FILE = ".deployerignore"
ALWAYS_IGNORED = ("*.pyc", ".DS_Store", "keypair.json", IGNORE_FILE)


@dataclass
class Packed:
    data: bytes
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def ignore_patterns(root: Path) -> list[str]:
    path = root / IGNORE_FILE
    if not path.is_file():
        return list(ALWAYS_IGNORED)
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [*ALWAYS_IGNORED, *(ln.rstrip("/") for ln in lines if ln and not ln.startswith("#"))]


def is_ignored(rel: str, patterns: list[str]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    if base.lower() == "keypair.json":  # in any case: the server refuses a keypair inside the project
        return True
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def pack_folder(root: Path) -> Packed:
    patterns = ignore_patterns(root)
    packed = Packed(b"")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath)
            rel_dir = base.relative_to(root).as_posix()
            keep = []
            for d in sorted(dirnames):
                rel = d if rel_dir == "." else f"{rel_dir}/{d}"
                if d in SKIPPED_DIRS or is_ignored(rel, patterns) or (base / d).is_symlink():
                    packed.skipped.append(rel + "/")
                else:
                    keep.append(d)
            dirnames[:] = keep
            for name in sorted(filenames):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                path = base / name
                if is_ignored(rel, patterns) or path.is_symlink() or not path.is_file():
                    packed.skipped.append(rel)
                    continue
                zf.write(path, rel)
                packed.files.append(rel)
    packed.data = buf.getvalue()
    return packed
