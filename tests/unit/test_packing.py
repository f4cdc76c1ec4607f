from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from deployer.bundles.packing import pack_folder


def test_packing_skips_vcs_envs_caches_keypair_and_ignored_patterns(tmp_path: Path) -> None:
    for rel in ["agent.py", "lib/util.py", ".git/HEAD", "node_modules/x/i.js", ".venv/bin/py",
                "lib/__pycache__/u.pyc", "keypair.json", "data/big.csv", "notes.log", "lib/x.log"]:  # fmt: skip
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    (tmp_path / ".deployerignore").write_text("# comments are fine\ndata/\n*.log\n")
    os.symlink("/etc/passwd", tmp_path / "link")
    packed = pack_folder(tmp_path)
    names = sorted(zipfile.ZipFile(io.BytesIO(packed.data)).namelist())
    assert names == ["agent.py", "lib/util.py"]
    assert "keypair.json" in packed.skipped and "link" in packed.skipped and "data/" in packed.skipped


def test_a_keypair_in_any_case_and_any_folder_is_never_packed(tmp_path: Path) -> None:
    for rel in ("KeyPair.JSON", "keys/agent/keypair.json", "agent.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    packed = pack_folder(tmp_path)
    assert packed.files == ["agent.py"]
    assert {"KeyPair.JSON", "keys/agent/keypair.json"} <= set(packed.skipped)
