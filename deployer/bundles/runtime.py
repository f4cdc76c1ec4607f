"""Runtime detection and launch commands (docs/architecture.md#containers-and-images), as pure functions over a
bundle's facts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from deployer.errors import InvalidUpload

RUNTIMES = ("python", "node")
APP_DEPS = "/opt/app-deps"  # a Python app's own packages: pip --prefix here; the bases put it on sys.path
# `language` in the config JSON, as the reference accepts it.
LANGUAGE_ALIASES = {"python": "python", "py": "python", "node": "node", "ts": "node", "js": "node"}
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
    compile: tuple[str, ...] | None = None  # run at build time after the install (TypeScript → JavaScript)


def detect_runtime(facts: BundleFacts, requested: str | None = None) -> str:
    if facts.language is not None:
        runtime = LANGUAGE_ALIASES.get(facts.language.strip().lower())
        if runtime is None:
            raise InvalidUpload(
                f"language in the config must be one of {', '.join(RUNTIMES)} (or py, ts, js), "
                f"got {facts.language[:40]!r}"
            )
        return runtime
    if requested is not None:
        if requested not in RUNTIMES:
            raise InvalidUpload(f"runtime must be one of {', '.join(RUNTIMES)}, got {requested[:40]!r}")
        return requested
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


_PIP = ("pip", "install", "--no-cache-dir", "--no-warn-script-location", "--prefix", APP_DEPS)


def python_plan(facts: BundleFacts) -> LaunchPlan:
    if facts.requirements is not None and _requirement_lines(facts.requirements):
        install: tuple[str, ...] | None = (*_PIP, "-r", "requirements.txt")
    elif "pyproject.toml" in facts.files:
        install = (*_PIP, ".")
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
            return LaunchPlan("python", ("uvicorn", f"{module}:app", "--host", "0.0.0.0", "--port", "5000"), install)
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


def typescript_build(entry: str, *, esm: bool) -> tuple[tuple[str, ...], str]:
    """esbuild compiles `<entry>.ts` with its local imports into one file beside it (so `__dirname` and
    relative paths mean what they meant in the source); packages stay `require`/`import`s of node_modules.
    Returns the compile command (run in the app's directory) and the file the container runs."""
    out = f"{entry}.compiled.{'mjs' if esm else 'cjs'}"
    fmt = "esm" if esm else "cjs"
    command = ("esbuild", f"{entry}.ts", "--bundle", "--platform=node", "--target=node20", "--packages=external",
               f"--format={fmt}", "--sourcemap", "--log-level=warning", f"--outfile={out}")  # fmt: skip
    return command, f"/app/{out}"


def node_plan(facts: BundleFacts) -> LaunchPlan:
    install = node_install(facts)
    pkg = facts.package_json or {}
    if f"{facts.entity}.ts" in facts.files:
        # Compiled at build time, never fetched at start: a restart needs no registry.
        compile_, out = typescript_build(facts.entity, esm=pkg.get("type") == "module")
        return LaunchPlan("node", ("node", "--enable-source-maps", out), install, compile_)
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
