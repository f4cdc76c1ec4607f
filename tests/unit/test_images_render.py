"""What the image builds are made of, decided without Docker: app Dockerfiles, build settings, recipes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from deployer.bundles.runtime import BundleFacts, LaunchPlan, launch_plan
from deployer.errors import BuildFailed
from deployer.lifecycle import images
from deployer.lifecycle.images import BuildSettings, render_app_dockerfile, render_build_env
from deployer.settings import load_settings

LABELS = {"deployer.managed": "true", "deployer.role": "app"}
SECRET_INDEX = "https://user:s3cret@pypi.example/simple"


def plan(*files: str, **kw: Any) -> LaunchPlan:
    return launch_plan(BundleFacts(files=frozenset(files), **kw))


def test_an_app_without_installs_is_one_stage_that_copies_the_bundle() -> None:
    text = render_app_dockerfile("deployer/agent-base:latest", plan("agent.py", entity="agent"), labels=LABELS)
    assert text.splitlines() == [
        "FROM deployer/agent-base:latest", "COPY app /app",
        'LABEL deployer.managed="true" deployer.role="app"', 'CMD ["python", "/app/agent.py"]',
    ]  # fmt: skip


def test_python_requirements_install_in_a_build_stage_and_only_the_app_packages_come_across() -> None:
    p = plan("agent.py", "requirements.txt", entity="agent", requirements="httpx\n")
    text = render_app_dockerfile("base:1", p, labels=LABELS)
    build, final = text.split("\n\n")
    assert build.startswith("FROM base:1 AS build\nCOPY . /deployer-build/\nRUN . /deployer-build/build/env")
    run = build.split("RUN ", 1)[1].split(" \\\n && ")
    install = "pip install --no-cache-dir --no-warn-script-location --prefix /opt/app-deps -r requirements.txt"
    assert run[run.index("cd /deployer-build/app") + 1] == install
    assert run[-3:] == ["mkdir -p /out/opt", "mv /opt/app-deps /out/opt/", "mv /deployer-build/app /out/app"]
    assert final.splitlines()[:2] == ["FROM base:1", "COPY --from=build /out /"]  # the app and its packages only
    assert "/deployer-build" not in final and "/opt/venv" not in text  # the base's SDK virtualenv is not copied


def test_a_typescript_agent_without_dependencies_compiles_in_one_stage_with_no_registry() -> None:
    p = plan("package.json", "agent.ts", entity="agent", package_json={})
    text = render_app_dockerfile("node-base", p, labels=LABELS)
    assert "AS build" not in text and "/deployer-build" not in text
    run = text.split("RUN ", 1)[1].split("\nLABEL")[0]
    assert "{ grep -q '^esbuild ' /opt/deployer/node-tools || { echo 'deployer: esbuild is not" in run
    assert run.startswith("cd /app \\\n && ") and "esbuild agent.ts --bundle" in run
    assert text.endswith('CMD ["node", "--enable-source-maps", "/app/agent.compiled.cjs"]\n')


@pytest.mark.parametrize("tool", ["pnpm", "yarn"])
def test_a_pnpm_or_yarn_install_first_checks_the_base_has_the_tool_and_names_the_cause(tool: str) -> None:
    lock = {"pnpm": "pnpm-lock.yaml", "yarn": "yarn.lock"}[tool]
    p = plan("package.json", lock, "agent.js", entity="agent", package_json={})
    text = render_app_dockerfile("node-base", p, labels=LABELS)
    run = text.split("RUN ", 1)[1]
    guard = run.index(f"grep -q '^{tool} ' /opt/deployer/node-tools")
    assert guard < run.index(f"{tool} install")
    assert f"deployer: {tool} is not available: the node base image was built where no npm registry answered" in run
    assert "mv /deployer-build/app /out/app" in run and "COPY --from=build /out /" in text  # with node_modules


def test_build_env_carries_install_settings_quoted_and_the_ca_for_every_client() -> None:
    env = render_build_env(BuildSettings(pip_index_url=SECRET_INDEX, npm_registry="https://npm.example/",
                                         has_ca=True))  # fmt: skip
    assert f"export PIP_INDEX_URL={SECRET_INDEX}" in env.splitlines()
    assert "export npm_config_registry=https://npm.example/" in env.splitlines()
    assert "export COREPACK_NPM_REGISTRY=https://npm.example" in env.splitlines()
    for name in ("PIP_CERT", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"):
        assert f"export {name}=/deployer-build/build/ca.crt" in env.splitlines()
    hostile = render_build_env(BuildSettings(pip_index_url="http://x/$(reboot)'"))
    assert "export PIP_INDEX_URL='http://x/$(reboot)'\"'\"''" in hostile


def test_a_local_wheelhouse_without_an_index_installs_offline() -> None:
    env = render_build_env(BuildSettings(has_wheels=True)).splitlines()
    assert "export PIP_FIND_LINKS=/deployer-build/build/wheels" in env and "export PIP_NO_INDEX=1" in env


def test_settings_and_the_ca_go_to_the_build_context_never_into_the_dockerfile(tmp_path: Path) -> None:
    ca = tmp_path / "proxy-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nproxy\n-----END CERTIFICATE-----\n")
    s = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_PIP_INDEX_URL": SECRET_INDEX,
                       "DEPLOYER_BUILD_CA_BUNDLE": str(ca)})  # fmt: skip
    context = tmp_path / "context"
    (context / "app").mkdir(parents=True)
    (context / "app" / "requirements.txt").write_text("httpx\n")
    p = plan("agent.py", "requirements.txt", entity="agent", requirements="httpx\n")
    images.write_app_context(context, s, "base:1", p, LABELS)
    dockerfile = (context / "Dockerfile").read_text()
    assert "s3cret" not in dockerfile and "proxy" not in dockerfile
    assert (context / "build" / "ca.crt").read_bytes() == ca.read_bytes()
    assert "s3cret" in (context / "build" / "env").read_text()
    digest = images.context_digest(context, "sha256:base")
    (context / "build" / "env").write_text("export PIP_INDEX_URL=http://127.0.0.1:9/\n")
    assert images.context_digest(context, "sha256:base") == digest  # other install settings: the same image


def test_no_build_directory_when_nothing_is_installed(tmp_path: Path) -> None:
    s = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_BUILD_CA_BUNDLE": str(tmp_path / "missing")})
    context = tmp_path / "context"
    (context / "app").mkdir(parents=True)
    images.write_app_context(context, s, "base:1", plan("agent.py", entity="agent"), LABELS)
    assert not (context / "build").exists()


def test_an_unreadable_ca_bundle_fails_the_build_naming_the_setting(tmp_path: Path) -> None:
    s = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_BUILD_CA_BUNDLE": str(tmp_path / "missing")})
    with pytest.raises(BuildFailed, match="DEPLOYER_BUILD_CA_BUNDLE: cannot read"):
        images.write_app_context(tmp_path, s, "base:1", plan("agent.py", "pyproject.toml", entity="agent"), LABELS)


def test_a_failed_build_leads_with_the_cause_our_steps_printed() -> None:
    tail = ["Step 4/9 : RUN …", "deployer: pnpm is not available: no registry", "removing intermediate container"]
    message = images.failure_message("The command '/bin/sh -c …' returned a non-zero code: 1", tail)
    assert message.splitlines()[0] == "pnpm is not available: no registry"
    plain = images.failure_message("COPY failed: no such file", ["Step 2/3 : COPY x /x"])
    assert plain.splitlines()[0] == "Image build failed: COPY failed: no such file"


def test_a_base_recipe_changes_with_its_dockerfile_arguments_and_the_image_it_is_built_from() -> None:
    s = load_settings({})
    agent, node = images.BASE_IMAGES[0], images.BASE_IMAGES[2]
    one = images.base_recipe(agent, s, base="python:3.12-slim", base_id="sha256:a")
    assert one == images.base_recipe(agent, s, base="python:3.12-slim", base_id="sha256:a")
    assert one != images.base_recipe(agent, s, base="python:3.12-slim", base_id="sha256:b")
    assert one != images.base_recipe(agent, s, base="deployer/debian-base:trixie", base_id="sha256:a")
    newer = load_settings({"DEPLOYER_ZYND_SDK_VERSION": "0.7.0"})
    assert one != images.base_recipe(agent, newer, base="python:3.12-slim", base_id="sha256:a")
    assert images.base_recipe(node, s, base="n", base_id="i") == images.base_recipe(node, newer, base="n", base_id="i")
    with_ca = load_settings({"DEPLOYER_BUILD_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"})
    assert one == images.base_recipe(agent, with_ca, base="python:3.12-slim", base_id="sha256:a")


def test_a_base_context_holds_the_dockerfile_its_files_and_the_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    s = load_settings({"DEPLOYER_BUILD_CA_BUNDLE": str(ca)})

    def names(base: images.BaseImage) -> set[str]:
        with tarfile.open(fileobj=io.BytesIO(images.base_context(base, s))) as tar:
            return set(tar.getnames())

    assert names(images.BASE_IMAGES[0]) == {"Dockerfile", "build/env", "build/ca.crt", "build/deployer_app_deps.py"}
    assert names(images.BASE_IMAGES[3]) == {"Dockerfile", "build/env", "build/ca.crt", "build/node-tools.sh"}


def test_every_dockerfile_takes_its_base_as_a_build_argument() -> None:
    for path in [*images.DOCKERFILES.glob("*.Dockerfile"), Path(__file__).parents[2] / "Dockerfile"]:
        lines = path.read_text().splitlines()
        assert any(line.startswith("ARG BASE=") for line in lines), path
        assert all(line.startswith("FROM ${BASE}") for line in lines if line.startswith("FROM ")), path


def test_the_python_bases_pin_the_zynd_sdk_from_the_setting_and_the_node_bases_do_not() -> None:
    s = load_settings({"DEPLOYER_ZYND_SDK_VERSION": "0.6.5"})

    def env(base: images.BaseImage) -> list[str]:
        with tarfile.open(fileobj=io.BytesIO(images.base_context(base, s))) as tar:
            member = tar.extractfile("build/env")
            assert member is not None
            return member.read().decode().splitlines()

    assert "export ZYND_SDK_VERSION=0.6.5" in env(images.BASE_IMAGES[1])
    assert not any("ZYND_SDK_VERSION" in line for line in env(images.BASE_IMAGES[2]))
    assert '"zyndai-agent[heartbeat]==${ZYND_SDK_VERSION:?}"' in (images.DOCKERFILES / "python.Dockerfile").read_text()


def test_an_unusable_sdk_version_is_refused_when_settings_load() -> None:
    from deployer.errors import ConfigError

    with pytest.raises(ConfigError, match="DEPLOYER_ZYND_SDK_VERSION"):
        load_settings({"DEPLOYER_ZYND_SDK_VERSION": "0.6.5; rm -rf /"})
