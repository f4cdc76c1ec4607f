"""Content rules for an unpacked bundle (docs/architecture.md#uploads) and the facts runtime detection needs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any

from deployer.bundles.runtime import BundleFacts, LaunchPlan, launch_plan
from deployer.errors import InvalidUpload

CONFIG_FILES = {"agent.config.json": "agent", "service.config.json": "service"}
FORBIDDEN_ENV_KEYS = frozenset({"ZYND_DEVELOPER_PRIVATE_KEY", "ZYND_DEVELOPER_SEED"})
MAX_REQUIREMENT_LINES = 200
_SMALL = 1024 * 1024  # config-like files larger than this are refused rather than parsed
_NPMRC_SECRET = re.compile(r"(_authToken|_auth|_password|//[^\s=]*:\s*(username|email))\s*=", re.IGNORECASE)
# Every spelling a dotenv loader may take for an assignment: `export`, quoted names, `=` or `:`.
_ENV_LINE = re.compile(r"""^\s*(?:export\s+)?(['"]?)([A-Za-z_][A-Za-z0-9_.-]*)\1\s*[=:]""")
_PRIVATE_KEY_MEMBER = re.compile(rb'"private_key"\s{0,32}:')
_DEP_FIELDS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


@dataclass(frozen=True)
class BundleInfo:
    name: str
    entity_type: str  # agent | service
    config_file: str | None  # agent.config.json / service.config.json, None for a plain service
    launch: LaunchPlan

    @property
    def runtime(self) -> str:
        return self.launch.runtime

    @property
    def is_zynd(self) -> bool:
        return self.config_file is not None


def _read(root: Path, rel: str) -> str:
    path = root / rel
    if path.stat().st_size > _SMALL:
        raise InvalidUpload(f"{rel} is larger than {_SMALL} bytes")
    return path.read_text(encoding="utf-8", errors="replace")


def _json(root: Path, rel: str) -> Any:
    try:
        return json.loads(_read(root, rel))
    except json.JSONDecodeError as exc:
        raise InvalidUpload(f"{rel} is not valid JSON (line {exc.lineno})") from None


KEY_FIELD_HINT = "the keypair belongs in the keypair.json upload field, not in the project"


def check_forbidden(root: Path, files: list[str]) -> None:
    """Refuses credentials inside the project (names compare case-insensitively): they would end up in
    an image layer. The entity's own keypair travels apart, as the `keypair.json` field."""
    for rel in files:
        parts = PurePosixPath(rel.lower()).parts
        base = parts[-1]
        if base == "developer.json":
            raise InvalidUpload(f"{rel}: developer credentials must not be uploaded")
        if any(a == ".zynd" and b == "developer" for a, b in pairwise(parts)):
            raise InvalidUpload(f"{rel}: files under .zynd/developer/ must not be uploaded")
        if base == "keypair.json":
            raise InvalidUpload(f"{rel} is a keypair inside the project; {KEY_FIELD_HINT}")
        if base.endswith(".json") and _holds_private_key(root / rel):
            raise InvalidUpload(f"{rel} holds a private_key; {KEY_FIELD_HINT}")
        if base == ".env" or base.startswith(".env."):
            _check_env_file(root, rel)
        elif base == ".npmrc" and _NPMRC_SECRET.search(_read(root, rel)):
            raise InvalidUpload(f"{rel} contains a registry auth token; remove it and use the deployer's registry")
        elif rel.rsplit("/", 1)[-1] == "package.json":  # npm reads this exact name only
            _check_workspace_specifiers(rel, _json(root, rel))


def _holds_private_key(path: Path) -> bool:
    """Whether a JSON file has a `private_key` member anywhere. A textual match on `"private_key":`
    is exact for JSON (a quote inside a string is escaped), needs no parse, and so also covers files
    too large to parse here and JSON-with-comments; it is read in chunks that overlap by a match."""
    overlap = 64
    tail = b""
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            if _PRIVATE_KEY_MEMBER.search(tail + chunk):
                return True
            tail = chunk[-overlap:]
    return False


def _check_env_file(root: Path, rel: str) -> None:
    for line in _read(root, rel).splitlines():
        m = _ENV_LINE.match(line)
        if m and m.group(2).upper() in FORBIDDEN_ENV_KEYS:
            raise InvalidUpload(f"{rel} sets {m.group(2)}; developer keys must never be deployed")


def _check_workspace_specifiers(rel: str, doc: Any) -> None:
    if not isinstance(doc, dict):
        raise InvalidUpload(f"{rel} must be a JSON object")
    for section in _DEP_FIELDS:
        deps = doc.get(section) or {}
        if not isinstance(deps, dict):
            raise InvalidUpload(f"{rel}: {section} must be an object")
        for pkg, spec in deps.items():
            if isinstance(spec, str) and spec.strip().startswith("workspace:"):
                raise InvalidUpload(
                    f"{rel}: {section}.{pkg[:60]} uses a workspace: specifier, which cannot be installed here"
                )


def _config(root: Path, names: set[str]) -> tuple[str | None, dict[str, Any]]:
    present = [f for f in CONFIG_FILES if f in names]
    if len(present) > 1:
        raise InvalidUpload("Bundle has both agent.config.json and service.config.json; keep exactly one")
    if not present:
        return None, {}
    doc = _json(root, present[0])
    if not isinstance(doc, dict):
        raise InvalidUpload(f"{present[0]} must be a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidUpload(f"{present[0]} needs a string name")
    language = doc.get("language")
    if language is not None and not isinstance(language, str):
        raise InvalidUpload(f"{present[0]}: language must be a string")
    return present[0], doc


def _requirements(root: Path, names: set[str]) -> str | None:
    if "requirements.txt" not in names:
        return None
    text = _read(root, "requirements.txt")
    count = sum(1 for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#"))
    if count > MAX_REQUIREMENT_LINES:
        raise InvalidUpload(f"requirements.txt has {count} requirement lines; the limit is {MAX_REQUIREMENT_LINES}")
    return text


def inspect_bundle(root: Path, files: list[str], *, name: str | None = None, runtime: str | None = None) -> BundleInfo:
    """Validate the unpacked tree at `root` and work out what it is and how it starts."""
    check_forbidden(root, files)
    names = {f for f in files if "/" not in f}
    config_file, config = _config(root, names)
    package_json = _json(root, "package.json") if "package.json" in names else None
    facts = BundleFacts(
        files=frozenset(names),
        entity=CONFIG_FILES[config_file] if config_file else "service",
        language=config.get("language"),
        package_json=package_json if isinstance(package_json, dict) else None,
        procfile=_read(root, "Procfile") if "Procfile" in names else None,
        python_sources={f: _read(root, f) for f in names if f.endswith(".py")},
        requirements=_requirements(root, names),
    )
    display = (name or "").strip() or str(config.get("name") or "").strip()
    if not display:
        raise InvalidUpload("name is required for a bundle without agent.config.json or service.config.json")
    return BundleInfo(
        name=display[:200],
        entity_type=facts.entity,
        config_file=config_file,
        launch=launch_plan(facts, runtime),
    )
