"""The project's own rules, enforced in the test run: layering, no import cycles, lint, types."""

from __future__ import annotations

import functools
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=240)


@functools.cache
def lint_imports() -> subprocess.CompletedProcess[str]:
    # The console script may not sit beside this interpreter (a venv over system packages): call its function.
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    found: list[dict[str, Any]] = config["contracts"]
    return found


def assert_kept(names: list[str]) -> None:
    result = lint_imports()
    broken = [name for name in names if f"{name} KEPT" not in result.stdout]
    assert not broken, f"broken: {broken}\n" + result.stdout + result.stderr


def test_imports_follow_the_layering_contract() -> None:
    assert_kept([c["name"] for c in contracts() if c["type"] == "layers"])
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_package_has_an_import_cycle() -> None:
    cycle_contracts = [c for c in contracts() if c["type"] == "acyclic_siblings"]
    # Every top-level package is covered; the contract descends into its subpackages by itself.
    covered = {ancestor for c in cycle_contracts for ancestor in c["ancestors"]}
    roots = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
    assert covered == set(roots)
    through_init = [c["name"] for c in contracts() if c["name"].startswith("No import cycles through")]
    assert through_init
    assert_kept([c["name"] for c in cycle_contracts] + through_init)


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
