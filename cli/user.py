"""User commands: they talk to a deployer's API (DEPLOYER_URL, DEPLOYER_TOKEN), from any machine."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from cli.client import ApiClient

# The names these command bodies had in cli.main, so that they moved unchanged.
from cli.common import client_of as _client
from cli.common import ts as _ts
from deployer.bundles.packing import pack_folder


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected K=V, got {pair!r}", param_hint="--env")
        env[key] = value
    return env


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", help="Deployment name (default: the config's name)")
@click.option("--keypair", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="keypair.json")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="Environment variable (repeatable)")
@click.option("--follow", "-f", is_flag=True, help="Show each stage and log line until running or failed")
@click.pass_context
def deploy(
    ctx: click.Context, path: Path, name: str | None, keypair: Path | None, env_pairs: tuple[str, ...], follow: bool
) -> None:
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
    if result.get("image"):
        click.echo(f"image:   {result['image']}")
    if result.get("url"):
        click.echo(f"url:     {result['url']}")
    click.echo(f"page:    {client.base_url}/d/{result['id']}")
    if follow:
        _follow_to_end(client, result["id"])


def _follow_to_end(client: ApiClient, deployment_id: str) -> None:
    from cli.follow import follow as follow_logs
    from cli.follow import shown

    row = follow_logs(client, deployment_id)
    if row["status"] == "running":
        click.echo(f"running: {row['url'] or 'http://localhost:' + str(row['port'])}")
        return
    raise click.ClickException(shown(f"{row['status']}: {row.get('error_message') or 'see the log above'}"))


@click.command("ls")
@click.option("--status", help="Only this status")
@click.pass_context
def ls(ctx: click.Context, status: str | None) -> None:
    """List deployments, newest first."""
    body = _client(ctx).deployments(status=status)
    click.echo(f"{'ID':<36}  {'SLUG':<32} {'STATUS':<18} {'RUNTIME':<7} CREATED")
    for d in body["deployments"]:
        click.echo(f"{d['id']:<36}  {d['slug']:<32} {d['status']:<18} {d['runtime']:<7} {_ts(d['created_at'])}")
    click.echo(f"{len(body['deployments'])} of {body['total']}", err=True)


@click.command()
@click.argument("deployment")
@click.pass_context
def status(ctx: click.Context, deployment: str) -> None:
    """Show one deployment. DEPLOYMENT: its id, slug or a unique id prefix."""
    from cli.follow import shown

    client = _client(ctx)
    d = client.get(client.resolve(deployment))
    for key, value in d.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else ("-" if value is None else str(value))
        click.echo(f"{key + ':':<16} {shown(text, indent=17)}")  # the error message holds build output


@click.command()
@click.argument("deployment")
@click.option("--no-wait", is_flag=True, help="Return once the stop is recorded, before the teardown ends")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the teardown")
@click.pass_context
def stop(ctx: click.Context, deployment: str, no_wait: bool, timeout: float) -> None:
    """Stop a deployment (idempotent) and wait until its container and route are gone. DEPLOYMENT: its
    id, slug or a unique id prefix."""
    client = _client(ctx)
    deployment_id = client.resolve(deployment)
    result = client.stop(deployment_id)
    if not no_wait and result["status"] == "stopped":
        _wait_torn_down(client, deployment_id, timeout)
    click.echo(f"{result['id']}: {result['status']}")


def _wait_torn_down(client: ApiClient, deployment_id: str, timeout: float) -> None:
    """The stop is recorded at once; the workers then remove the route and the container (after its
    grace period). Teardown clears `container_id` last, so its absence means all of it is done."""
    deadline = time.monotonic() + timeout
    told = False
    while client.get(deployment_id).get("container_id"):
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"the stop is recorded but the teardown has not finished after {timeout:g}s; "
                "the workers keep at it (see `deployer logs`)"
            )
        if not told:
            click.echo("stopping: removing the route and the container…", err=True)
            told = True
        time.sleep(0.25)


@click.command()
@click.argument("deployment")
@click.option("--follow", "-f", is_flag=True, help="Show each stage until running or failed")
@click.pass_context
def restart(ctx: click.Context, deployment: str, follow: bool) -> None:
    """Restart a crashed, stopped or failed deployment from its built image. DEPLOYMENT: its id, slug or
    a unique id prefix."""
    from cli.client import ApiError

    client = _client(ctx)
    deployment_id = client.resolve(deployment)
    deadline = time.monotonic() + 60
    while True:
        try:
            result = client.restart(deployment_id)
            break
        except ApiError as exc:  # BUSY: the stop's teardown is still running
            if exc.code != "BUSY" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    click.echo(f"{result['id']}: {result['status']}")
    if follow:
        _follow_to_end(client, deployment_id)


@click.command()
@click.argument("deployment")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines")
@click.option("--after", default=0, type=int, help="Only lines after this line number")
@click.option("--timestamps", "-t", is_flag=True, help="Show when each line was written (UTC)")
@click.pass_context
def logs(ctx: click.Context, deployment: str, follow: bool, after: int, timestamps: bool) -> None:
    """Print a deployment's log (stdout, stderr and system lines). DEPLOYMENT: its id, slug or a unique
    id prefix."""
    from cli.follow import echo_line
    from cli.follow import follow as follow_logs

    client = _client(ctx)
    deployment_id = client.resolve(deployment)
    if follow:
        follow_logs(client, deployment_id, until=None, after=after, timestamps=timestamps)
        return
    while True:  # every line, a page at a time
        page = client.logs(deployment_id, after=after, limit=2000)
        for line in page:
            echo_line(line, timestamps=timestamps)
            after = int(line["line_no"])
        if len(page) < 2000:
            return


COMMANDS: tuple[click.Command, ...] = (deploy, ls, status, stop, restart, logs)
