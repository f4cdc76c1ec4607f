"""The container's env block and config rewrite: the registry URL is never injected empty."""

from __future__ import annotations

import dataclasses

import pytest

from deployer.bundles.envblock import DEFAULT_REGISTRY_URL, registry_or_default, render_env, rewrite_config
from deployer.settings import Settings, load_settings


def env(registry_url: str, **user: str) -> dict[str, str]:
    return render_env(user, entity_type="agent", registry_url=registry_url, url="http://x", has_keypair=True)


def test_the_settings_default_is_the_reference_registry() -> None:
    default = next(f.default for f in dataclasses.fields(Settings) if f.name == "registry_url")
    assert default == DEFAULT_REGISTRY_URL == "https://dns01.zynd.ai"
    assert load_settings({}).registry_url == DEFAULT_REGISTRY_URL


@pytest.mark.parametrize("configured", ["", "   "])
def test_an_explicitly_empty_registry_url_falls_back_to_the_default_everywhere(configured: str) -> None:
    settings = load_settings({"ZYND_REGISTRY_URL": configured})
    assert env(settings.registry_url)["ZYND_REGISTRY_URL"] == DEFAULT_REGISTRY_URL
    assert rewrite_config({"name": "a"}, registry_url=settings.registry_url)["registry_url"] == DEFAULT_REGISTRY_URL
    assert registry_or_default(settings.registry_url) == DEFAULT_REGISTRY_URL


def test_an_operator_registry_wins_over_the_default_and_over_the_users_env() -> None:
    block = env("https://registry.example", ZYND_REGISTRY_URL="", OTHER="kept")
    assert block["ZYND_REGISTRY_URL"] == "https://registry.example" and block["OTHER"] == "kept"
    assert env("", ZYND_REGISTRY_URL="")["ZYND_REGISTRY_URL"] == DEFAULT_REGISTRY_URL
