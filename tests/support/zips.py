"""Building bundles (friendly and hostile) inside tests."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

AGENT_PY = b"print('hi')\n"
KEYPAIR = json.dumps({"public_key": "cHVibGljLWtleS1ieXRlcw==", "private_key": "U0VDUkVULXByaXZhdGUta2V5"}).encode()
PRIVATE_KEY = "U0VDUkVULXByaXZhdGUta2V5"


def make_zip(files: dict[str, bytes | str], *, modes: dict[str, int] | None = None) -> bytes:
    """A zip of `files`; `modes` sets unix mode bits (file type included) per entry name."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            mode = (modes or {}).get(name, stat.S_IFREG | 0o644)
            info.external_attr = (mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def agent_files(name: str = "Test Agent", **extra: bytes | str) -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = {
        "agent.config.json": json.dumps({"name": name}),
        "agent.py": AGENT_PY,
    }
    files.update(extra)
    return files


def agent_zip(name: str = "Test Agent", **extra: bytes | str) -> bytes:
    return make_zip(agent_files(name, **extra))


def zip_folder(root: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.name != "keypair.json":
                zf.write(p, p.relative_to(root).as_posix())
    return buf.getvalue()
