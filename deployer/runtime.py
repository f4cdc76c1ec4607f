"""Runtime detection and launch commands (DESIGN §7), as pure functions over a bundle's facts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from deployer.errors import InvalidUpload

RUNTIMES = ("python", "node")
_APP_DEF = re.compile(r"^app\s*(:[^=]*)?=", re.MULTILINE)


@dataclass(frozen=True)
class BundleFacts:
    """What detection needs to know about an unpacked bundle (root-level facts only)."""

    files: frozenset[str]
    entity: str = "service"  # "agent" or "service": names the entry file agent.py / service.ts …
    language: str | None = None  # `language` from the config JSON
    package_json: dict[str, Any] | None = None
    procfile: str | None = None
    python_sources: dict[str, str] = field(default_factory=dict)  # root *.py name -> text
    requirements: str | None = None


@dataclass(frozen=True)
class LaunchPlan:
    runtime: str
    command: tuple[str, ...]
    install: tuple[str, ...] | None  # None: nothing to install


def detect_runtime(facts: BundleFacts, requested: str | None = None) -> str:
    for source, value in (("language in the config", facts.language), ("runtime", requested)):
        if value is not None:
            if value not in RUNTIMES:
                raise InvalidUpload(f"{source} must be one of {', '.join(RUNTIMES)}, got {value[:40]!r}")
            return value
    names = facts.files
    python = bool(names & {"agent.py", "service.py", "requirements.txt", "pyproject.toml"})
    node = "package.json" in names
    if python and node:
        raise InvalidUpload("Ambiguous upload: both Python and Node project files at the root; set runtime")
    if python:
        return "python"
    if node:
        return "node"
    raise InvalidUpload(
        "Could not detect runtime: no agent.py, service.py, requirements.txt, pyproject.toml or package.json"
    )


def _procfile_web(procfile: str | None) -> str | None:
    for line in (procfile or "").splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == "web" and command.strip():
            return command.strip()
    return None


def _requirement_lines(text: str) -> list[str]:
    return [ln for ln in (raw.strip() for raw in text.splitlines()) if ln and not ln.startswith("#")]


def python_plan(facts: BundleFacts) -> LaunchPlan:
    if facts.requirements is not None and _requirement_lines(facts.requirements):
        install: tuple[str, ...] | None = ("pip", "install", "--no-cache-dir", "-r", "requirements.txt")
    elif "pyproject.toml" in facts.files:
        install = ("pip", "install", "--no-cache-dir", ".")
    else:
        install = None
    entry = f"{facts.entity}.py"
    if entry in facts.files:
        return LaunchPlan("python", ("python", f"/app/{entry}"), install)
    web = _procfile_web(facts.procfile)
    if web:
        return LaunchPlan("python", ("sh", "-c", web), install)
    for name in sorted(facts.python_sources):
        if _APP_DEF.search(facts.python_sources[name]):
            module = name.removesuffix(".py")
            return LaunchPlan(
                "python", ("uvicorn", f"{module}:app", "--host", "0.0.0.0", "--port", "5000"), install
            )
    raise InvalidUpload(
        f"Could not find how to start the Python app: add {entry}, a Procfile with a web: line, "
        "or a module that defines app"
    )


def node_install(facts: BundleFacts) -> tuple[str, ...] | None:
    names = facts.files
    if "pnpm-lock.yaml" in names:
        return ("pnpm", "install", "--prod", "--frozen-lockfile")
    if "yarn.lock" in names:
        return ("yarn", "install", "--production", "--frozen-lockfile")
    if "package-lock.json" in names:
        return ("npm", "ci", "--omit=dev")
    deps = (facts.package_json or {}).get("dependencies")
    if isinstance(deps, dict) and deps:
        return ("npm", "install", "--omit=dev")
    return None


def node_plan(facts: BundleFacts) -> LaunchPlan:
    install = node_install(facts)
    pkg = facts.package_json or {}
    if f"{facts.entity}.ts" in facts.files:
        return LaunchPlan("node", ("npx", "--yes", "tsx", f"/app/{facts.entity}.ts"), install)
    if f"{facts.entity}.js" in facts.files:
        return LaunchPlan("node", ("node", f"/app/{facts.entity}.js"), install)
    scripts = pkg.get("scripts")
    if isinstance(scripts, dict) and isinstance(scripts.get("start"), str) and scripts["start"].strip():
        return LaunchPlan("node", ("npm", "start", "--silent"), install)
    main = pkg.get("main")
    if isinstance(main, str) and main.strip() and ".." not in main.split("/"):
        return LaunchPlan("node", ("node", f"/app/{main.strip().removeprefix('./')}"), install)
    raise InvalidUpload(
        f"Could not find how to start the Node app: add {facts.entity}.ts, {facts.entity}.js, "
        "scripts.start or main in package.json"
    )


def launch_plan(facts: BundleFacts, requested: str | None = None) -> LaunchPlan:
    runtime = detect_runtime(facts, requested)
    return python_plan(facts) if runtime == "python" else node_plan(facts)
