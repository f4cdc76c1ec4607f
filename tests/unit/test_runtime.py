from __future__ import annotations

from typing import Any

import pytest

from deployer.bundles.runtime import BundleFacts, detect_runtime, launch_plan
from deployer.errors import InvalidUpload

PIP = ("pip", "install", "--no-cache-dir", "--no-warn-script-location", "--prefix", "/opt/app-deps")
PIP_R = (*PIP, "-r", "requirements.txt")


def facts(*files: str, **kw: Any) -> BundleFacts:
    return BundleFacts(files=frozenset(files), **kw)


CASES: list[tuple[str, BundleFacts, str, tuple[str, ...], tuple[str, ...] | None]] = [
    ("zynd python agent", facts("agent.py", entity="agent"), "python", ("python", "/app/agent.py"), None),
    ("zynd python service", facts("service.py", "requirements.txt", entity="service", requirements="requests\n"),
     "python", ("python", "/app/service.py"), PIP_R),
    ("requirements only comments installs nothing", facts("agent.py", "requirements.txt", entity="agent",
     requirements="# nothing\n\n"), "python", ("python", "/app/agent.py"), None),
    ("pyproject", facts("pyproject.toml", "service.py"), "python", ("python", "/app/service.py"),
     (*PIP, ".")),
    ("procfile", facts("requirements.txt", "Procfile", procfile="release: x\nweb: gunicorn app:app\n",
     requirements=""), "python", ("sh", "-c", "gunicorn app:app"), None),
    ("uvicorn module:app", facts("requirements.txt", "main.py", requirements="fastapi\n",
     python_sources={"main.py": "from fastapi import FastAPI\napp = FastAPI()\n"}), "python",
     ("uvicorn", "main:app", "--host", "0.0.0.0", "--port", "5000"), PIP_R),
    ("annotated app", facts("pyproject.toml", "server.py", python_sources={"server.py": "app: Starlette = x()\n"}),
     "python", ("uvicorn", "server:app", "--host", "0.0.0.0", "--port", "5000"),
     (*PIP, ".")),
    ("node ts agent runs the file compiled at build time", facts("package.json", "agent.ts", entity="agent",
     package_json={}), "node", ("node", "--enable-source-maps", "/app/agent.compiled.cjs"), None),
    ("node js agent", facts("package.json", "agent.js", entity="agent", package_json={}), "node",
     ("node", "/app/agent.js"), None),
    ("node scripts.start", facts("package.json", package_json={"scripts": {"start": "node srv.js"}}), "node",
     ("npm", "start", "--silent"), None),
    ("node main", facts("package.json", package_json={"main": "./dist/index.js"}), "node",
     ("node", "/app/dist/index.js"), None),
    ("pnpm lockfile", facts("package.json", "pnpm-lock.yaml", "service.js", package_json={}), "node",
     ("node", "/app/service.js"), ("pnpm", "install", "--prod", "--frozen-lockfile")),
    ("yarn lockfile", facts("package.json", "yarn.lock", "service.js", package_json={}), "node",
     ("node", "/app/service.js"), ("yarn", "install", "--production", "--frozen-lockfile")),
    ("npm lockfile", facts("package.json", "package-lock.json", "service.js", package_json={}), "node",
     ("node", "/app/service.js"), ("npm", "ci", "--omit=dev")),
    ("deps without lockfile", facts("package.json", "service.js", package_json={"dependencies": {"a": "1"}}),
     "node", ("node", "/app/service.js"), ("npm", "install", "--omit=dev")),
    ("config language wins over files", facts("package.json", "agent.js", "requirements.txt", entity="agent",
     language="node", package_json={}), "node", ("node", "/app/agent.js"), None),
]  # fmt: skip


@pytest.mark.parametrize(("case", "f", "runtime", "command", "install"), CASES, ids=[c[0] for c in CASES])
def test_detection_and_launch_follow_the_table(
    case: str, f: BundleFacts, runtime: str, command: tuple[str, ...], install: tuple[str, ...] | None
) -> None:
    plan = launch_plan(f)
    assert (plan.runtime, plan.command, plan.install) == (runtime, command, install)


def test_both_python_and_node_files_are_ambiguous_unless_runtime_is_given() -> None:
    f = facts("package.json", "requirements.txt", "service.py", package_json={}, requirements="")
    with pytest.raises(InvalidUpload, match="Ambiguous upload"):
        launch_plan(f)
    assert launch_plan(f, requested="python").runtime == "python"


def test_neither_is_undetectable() -> None:
    with pytest.raises(InvalidUpload, match="Could not detect runtime"):
        launch_plan(facts("README.md"))


def test_a_requested_runtime_must_be_known() -> None:
    with pytest.raises(InvalidUpload, match="runtime must be one of"):
        launch_plan(facts("agent.py"), requested="ruby")


@pytest.mark.parametrize(
    ("f", "problem"),
    [
        (facts("requirements.txt", requirements="x\n"), "Could not find how to start the Python app"),
        (facts("package.json", package_json={"main": "../../etc/x.js"}), "Could not find how to start the Node app"),
    ],
)
def test_a_bundle_without_an_entry_point_says_what_to_add(f: BundleFacts, problem: str) -> None:
    with pytest.raises(InvalidUpload, match=problem):
        launch_plan(f)


@pytest.mark.parametrize(
    ("language", "runtime"),
    [("python", "python"), ("py", "python"), ("node", "node"), ("ts", "node"), ("js", "node"), (" TS ", "node")],
)
def test_the_config_language_accepts_the_references_aliases(language: str, runtime: str) -> None:
    assert detect_runtime(facts("agent.py", "package.json", language=language)) == runtime


def test_an_unknown_config_language_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(InvalidUpload, match=r"language in the config must be one of python, node \(or py, ts, js\)"):
        detect_runtime(facts("agent.py", language="ruby"))


@pytest.mark.parametrize(("package_type", "fmt", "out"), [(None, "cjs", "cjs"), ("module", "esm", "mjs")])
def test_a_typescript_entry_is_compiled_by_esbuild_at_build_time_never_fetched_at_start(
    package_type: str | None, fmt: str, out: str
) -> None:
    pkg = {"type": package_type} if package_type else {}
    plan = launch_plan(facts("package.json", "agent.ts", entity="agent", package_json=pkg))
    assert plan.compile is not None and plan.compile[:2] == ("esbuild", "agent.ts")  # run in the app's directory
    assert {"--bundle", "--platform=node", "--packages=external", f"--format={fmt}"} <= set(plan.compile)
    assert f"--outfile=agent.compiled.{out}" in plan.compile
    assert plan.command == ("node", "--enable-source-maps", f"/app/agent.compiled.{out}")
    assert "npx" not in plan.command and "tsx" not in " ".join(plan.command)
