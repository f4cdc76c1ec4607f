"""`deployer`: user commands talk to the API; operator commands (db, token, serve) to the DB directly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli.client import ApiClient
from deployer import tokens
from deployer.db import make_engine, upgrade
from deployer.errors import DeployerError
from deployer.packing import pack_folder
from deployer.secrets import ensure_master_key
from deployer.settings import Settings, load_settings


def _settings(ctx: click.Context) -> Settings:
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings()
        except DeployerError as exc:
            raise click.ClickException(f"configuration: {exc.message}") from None
    settings: Settings = obj["settings"]
    return settings


def _client(ctx: click.Context) -> ApiClient:
    s = _settings(ctx)
    if not s.token:
        raise click.ClickException("DEPLOYER_TOKEN is not set; create one with `deployer token create --name NAME`")
    return ApiClient(s.url, s.token)


class Main(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeployerError as exc:
            raise click.ClickException(exc.message) from None


@click.group(cls=Main)
@click.version_option(package_name="deployer")
def main() -> None:
    """Deployer: run AI agents and small services from an uploaded bundle."""


# ---- operator commands ---------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply all migrations."""
    upgrade(make_engine(_settings(ctx).database_url))
    click.echo("database is up to date")


@main.group()
def token() -> None:
    """API tokens (stored hashed; shown once)."""


@token.command("create")
@click.option("--name", required=True, help="What the token is for")
@click.pass_context
def token_create(ctx: click.Context, name: str) -> None:
    """Create a token; it is printed alone on the last line and never shown again."""
    info, secret = tokens.create_token(make_engine(_settings(ctx).database_url), name)
    click.echo(f"created token {info.id} ({info.name}); store it now, it is not shown again:", err=True)
    click.echo(secret)


@token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    rows = tokens.list_tokens(make_engine(_settings(ctx).database_url))
    click.echo(f"{'ID':>4}  {'NAME':<24} {'CREATED':<20} {'LAST USED':<20} STATE")
    for t in rows:
        state = "revoked" if t.revoked_at else "active"
        click.echo(f"{t.id:>4}  {t.name:<24} {_ts(t.created_at):<20} {_ts(t.last_used_at):<20} {state}")


@token.command("revoke")
@click.argument("id_or_name")
@click.pass_context
def token_revoke(ctx: click.Context, id_or_name: str) -> None:
    info = tokens.revoke_token(make_engine(_settings(ctx).database_url), id_or_name)
    click.echo(f"revoked token {info.id} ({info.name})")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--threads", default=32, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int) -> None:
    """Run the web app (API and dashboard) under gunicorn with threaded workers."""
    from web.server import run

    settings = _settings(ctx)
    prepare(settings)
    click.echo(f"serving on http://{host}:{port}", err=True)
    run(settings, host=host, port=port, workers=workers, threads=threads)


def prepare(settings: Settings) -> None:
    """What a first start needs: the schema and the master key."""
    upgrade(make_engine(settings.database_url))
    ensure_master_key(settings.age_identity_path)


# ---- user commands (through the API) -------------------------------------------------------------


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected K=V, got {pair!r}", param_hint="--env")
        env[key] = value
    return env


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", help="Deployment name (default: the config's name)")
@click.option("--keypair", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="keypair.json")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="Environment variable (repeatable)")
@click.pass_context
def deploy(ctx: click.Context, path: Path, name: str | None, keypair: Path | None, env_pairs: tuple[str, ...]) -> None:
    """Upload a project folder (zipped here) or a .zip file and queue its deployment."""
    env = _parse_env(env_pairs)
    if path.is_dir():
        packed = pack_folder(path)
        bundle = packed.data
        click.echo(f"packed {len(packed.files)} files ({len(bundle)} bytes), skipped {len(packed.skipped)}", err=True)
        if keypair is None and (path / "keypair.json").is_file():
            keypair = path / "keypair.json"
    else:
        bundle = path.read_bytes()
    client = _client(ctx)
    keypair_bytes = keypair.read_bytes() if keypair else None
    with click.progressbar(length=len(bundle) + len(keypair_bytes or b""), label="uploading", file=sys.stderr) as bar:
        result = client.deploy(bundle, keypair=keypair_bytes, name=name, env=env, on_progress=bar.update)
    click.echo(f"id:      {result['id']}")
    click.echo(f"slug:    {result['slug']}")
    click.echo(f"status:  {result['status']}")
    click.echo(f"runtime: {result['runtime']}")
    if result.get("url"):
        click.echo(f"url:     {result['url']}")


def _ts(value: Any) -> str:
    if value is None:
        return "-"
    return str(value)[:19].replace("T", " ")


@main.command("ls")
@click.option("--status", help="Only this status")
@click.pass_context
def ls(ctx: click.Context, status: str | None) -> None:
    """List deployments, newest first."""
    body = _client(ctx).deployments(status=status)
    click.echo(f"{'ID':<36}  {'SLUG':<32} {'STATUS':<18} {'RUNTIME':<7} CREATED")
    for d in body["deployments"]:
        click.echo(f"{d['id']:<36}  {d['slug']:<32} {d['status']:<18} {d['runtime']:<7} {_ts(d['created_at'])}")
    click.echo(f"{len(body['deployments'])} of {body['total']}", err=True)


@main.command()
@click.argument("deployment_id")
@click.pass_context
def status(ctx: click.Context, deployment_id: str) -> None:
    """Show one deployment."""
    d = _client(ctx).get(deployment_id)
    for key, value in d.items():
        shown = ", ".join(value) if isinstance(value, list) else ("-" if value is None else value)
        click.echo(f"{key + ':':<16} {shown}")


@main.command()
@click.argument("deployment_id")
@click.pass_context
def stop(ctx: click.Context, deployment_id: str) -> None:
    """Stop a deployment (idempotent)."""
    result = _client(ctx).stop(deployment_id)
    click.echo(f"{result['id']}: {result['status']}")


if __name__ == "__main__":  # pragma: no cover
    main()
