"""What the user and operator commands share: the settings of this invocation and an API client."""

from __future__ import annotations

from typing import Any

import click

from cli.client import ApiClient, has_path_token
from deployer.errors import DeployerError
from deployer.settings import Settings, load_settings


def settings_of(ctx: click.Context) -> Settings:
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings()
        except DeployerError as exc:
            raise click.ClickException(f"configuration: {exc.message}") from None
    settings: Settings = obj["settings"]
    return settings


def client_of(ctx: click.Context) -> ApiClient:
    s = settings_of(ctx)
    if not s.token and not has_path_token(s.url):  # DEPLOYER_URL=<base>/t/<token> needs no header
        raise click.ClickException("DEPLOYER_TOKEN is not set; create one with `deployer token create --name NAME`")
    return ApiClient(s.url, s.token)


def ts(value: Any) -> str:
    if value is None:
        return "-"
    return str(value)[:19].replace("T", " ")
