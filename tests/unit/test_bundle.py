from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.bundles.rules import inspect_bundle
from deployer.errors import InvalidUpload


def tree(tmp_path: Path, files: dict[str, str]) -> tuple[Path, list[str]]:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path, list(files)


AGENT = {"agent.config.json": json.dumps({"name": "My Agent"}), "agent.py": "print(1)"}


def test_a_zynd_agent_is_recognised_with_its_name_runtime_and_launch(tmp_path: Path) -> None:
    info = inspect_bundle(*tree(tmp_path, AGENT))
    assert (info.name, info.entity_type, info.runtime, info.config_file) == (
        "My Agent", "agent", "python", "agent.config.json"
    )
    assert info.launch.command == ("python", "/app/agent.py")


def test_a_service_config_makes_a_service(tmp_path: Path) -> None:
    info = inspect_bundle(*tree(tmp_path, {"service.config.json": '{"name": "Svc"}', "service.py": ""}))
    assert info.entity_type == "service" and info.launch.command == ("python", "/app/service.py")


def test_the_name_field_overrides_and_a_plain_service_needs_one(tmp_path: Path) -> None:
    files = {"Procfile": "web: python s.py", "requirements.txt": ""}
    with pytest.raises(InvalidUpload, match="name is required"):
        inspect_bundle(*tree(tmp_path, files))
    info = inspect_bundle(*tree(tmp_path, files), name="Plain")
    assert (info.name, info.entity_type, info.config_file) == ("Plain", "service", None)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"developer.json": "{}"}, "developer credentials"),
        ({"sub/developer.json": "{}"}, "developer credentials"),
        ({".zynd/developer/key": "x"}, ".zynd/developer/"),
        ({".env": "A=1\nZYND_DEVELOPER_PRIVATE_KEY=abc\n"}, "ZYND_DEVELOPER_PRIVATE_KEY"),
        ({".env.production": "export ZYND_DEVELOPER_SEED = x"}, "ZYND_DEVELOPER_SEED"),
        ({".env": "ZYND_DEVELOPER_SEED: x"}, "ZYND_DEVELOPER_SEED"),
        ({".env": "'ZYND_DEVELOPER_PRIVATE_KEY'='abc'"}, "ZYND_DEVELOPER_PRIVATE_KEY"),
        ({".env": '  export "ZYND_DEVELOPER_SEED"=x'}, "ZYND_DEVELOPER_SEED"),
        ({".env": "zynd_developer_seed=x"}, "zynd_developer_seed"),
        ({".npmrc": "//registry.npmjs.org/:_authToken=npm_abc"}, "auth token"),
        ({".npmrc": "_auth=dXNlcjpwYXNz"}, "auth token"),
        ({"package.json": '{"dependencies": {"x": "workspace:*"}}'}, "workspace:"),
        ({"lib/package.json": '{"devDependencies": {"y": "workspace:^1.0"}}'}, "workspace:"),
        ({"service.config.json": '{"name": "x"}'}, "both agent.config.json and service.config.json"),
        ({"requirements.txt": "\n".join(f"pkg{i}" for i in range(201))}, "201 requirement lines"),
    ],
)
def test_forbidden_content_is_refused_with_the_reason(tmp_path: Path, extra: dict[str, str], problem: str) -> None:
    with pytest.raises(InvalidUpload) as err:
        inspect_bundle(*tree(tmp_path, {**AGENT, **extra}))
    assert problem in err.value.message


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"name": 5}', "needs a string name"),
        ('{"name": "  "}', "needs a string name"),
        ('{"name": "x", "language": "ruby"}', "must be one of python, node"),
    ],
)
def test_the_config_json_must_be_valid(tmp_path: Path, config: str, problem: str) -> None:
    with pytest.raises(InvalidUpload) as err:
        inspect_bundle(*tree(tmp_path, {"agent.config.json": config, "agent.py": ""}))
    assert problem in err.value.message


def test_harmless_npmrc_and_env_files_are_accepted(tmp_path: Path) -> None:
    files = {**AGENT, ".npmrc": "save-exact=true\n", ".env": "OPENAI_MODEL=gpt\n", "requirements.txt": "# none\n"}
    assert inspect_bundle(*tree(tmp_path, files)).runtime == "python"
