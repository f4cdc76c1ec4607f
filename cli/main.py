"""`deployer`: user commands talk to the API; operator commands (db, token, serve) to the DB directly."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from cli.client import ApiClient, has_path_token
from deployer.bundles.packing import pack_folder
from deployer.bundles.secrets import ensure_master_key
from deployer.errors import DeployerError
from deployer.localkeys import private_data_root
from deployer.settings import Settings, load_settings
from deployer.store import tokens
from deployer.store.db import make_engine, upgrade


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
    if not s.token and not has_path_token(s.url):  # DEPLOYER_URL=<base>/t/<token> needs no header
        raise click.ClickException("DEPLOYER_TOKEN is not set; create one with `deployer token create --name NAME`")
    return ApiClient(s.url, s.token)


class Main(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        started, code = time.monotonic(), 0
        try:
            return super().invoke(ctx)
        except DeployerError as exc:
            code = 1
            raise click.ClickException(exc.message) from None
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            raise
        except BaseException:
            code = 1
            raise
        finally:
            _trace_command(ctx, code, (time.monotonic() - started) * 1000)


def _trace_command(ctx: click.Context, code: int, ms: float) -> None:
    """The command watcher: one entry per CLI command, when tracing is on (flushed before exit)."""
    settings = (ctx.obj or {}).get("settings")
    if settings is None or not settings.trace_enabled or ctx.invoked_subcommand in (None, "trace"):
        return
    from traces.recorder import recorder_for
    from traces.watchers import record_command

    rec = recorder_for(settings)
    if rec is not None and rec.on("command"):
        record_command(rec, ctx.invoked_subcommand or "", sys.argv[2:], code, ms)
        rec.flush(timeout=2)


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
@click.option("--workers", type=int, help="default DEPLOYER_WEB_WORKERS")
@click.option("--threads", type=int, help="per worker, one per open log stream; default DEPLOYER_WEB_THREADS")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int | None, threads: int | None) -> None:
    """Run the web app (API and dashboard) under gunicorn with threaded workers."""
    from web.server import run

    settings = _settings(ctx)
    prepare(settings)
    click.echo(f"serving on http://{host}:{port}", err=True)
    workers, threads = workers or settings.web_workers, threads or settings.web_threads
    run(settings, host=host, port=port, workers=workers, threads=threads)


def prepare(settings: Settings) -> None:
    """What a first start needs: a private data root, the schema and the master key."""
    private_data_root(settings)
    upgrade(make_engine(settings.database_url))
    ensure_master_key(settings.age_identity_path)


def initialise(settings: Settings, *, images: bool) -> None:
    """`prepare`, and the runtime base images (pulled, or bootstrapped offline), with progress."""
    from cli.ops import ensure_images

    click.echo(f"data root {settings.data_root}; database {settings.database_url.split('@')[-1]}", err=True)
    prepare(settings)
    click.echo("migrations applied, master key ready", err=True)
    if images:
        ensure_images(settings)


@main.command()
@click.option("--skip-images", is_flag=True, help="Do not check or build the base images")
@click.pass_context
def init(ctx: click.Context, skip_images: bool) -> None:
    """Prepare this host once: migrations, the master key, the base images (`docker compose` runs it first)."""
    initialise(_settings(ctx), images=not skip_images)
    click.echo("ready", err=True)


# ---- user commands (through the API) -------------------------------------------------------------


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected K=V, got {pair!r}", param_hint="--env")
        env[key] = value
    return env


@main.group("schedule")
def schedule_group() -> None:
    """The schedule runtime: what beat runs, and how each schedule has fared."""


@schedule_group.command("list")
@click.pass_context
def schedule_list(ctx: click.Context) -> None:
    """Each schedule: interval, last run, last success, next run, failures, skips, last error."""
    from cli.schedule import list_schedules

    list_schedules(_settings(ctx))


@schedule_group.command("run")
@click.argument("name")
@click.pass_context
def schedule_run(ctx: click.Context, name: str) -> None:
    """Run one schedule now, through the workers (recorded like a beat run)."""
    from cli.schedule import run_schedule

    click.echo(f"{name} sent to the workers (task {run_schedule(_settings(ctx), name)})")


@main.group("trace")
def trace_group() -> None:
    """The trace runtime: serve it, prune or clear its entries, show its state."""


@trace_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7778, show_default=True, type=int)
@click.pass_context
def trace_serve(ctx: click.Context, host: str, port: int) -> None:
    """Run the trace dashboard and signed ingest (its own SQLite file, DB_DATABASE_SQLITE)."""
    from traces.server import serve

    click.echo(f"trace runtime on http://{host}:{port}", err=True)
    serve(_settings(ctx), host=host, port=port)


@trace_group.command("prune")
@click.option("--hours", type=int, help="keep this many hours (default TRACE_PRUNE_HOURS)")
@click.option("--keep-exceptions", is_flag=True, help="never prune exception entries")
@click.pass_context
def trace_prune(ctx: click.Context, hours: int | None, keep_exceptions: bool) -> None:
    """Delete entries older than now - hours, in batches."""
    from traces.server import prune

    click.echo(f"pruned {prune(_settings(ctx), hours=hours, keep_exceptions=keep_exceptions)} entries")


@trace_group.command("clear")
@click.confirmation_option(prompt="Delete every trace entry?")
@click.pass_context
def trace_clear(ctx: click.Context) -> None:
    """Delete every entry."""
    from traces.server import clear

    click.echo(f"cleared {clear(_settings(ctx))} entries")


@trace_group.command("status")
@click.pass_context
def trace_status(ctx: click.Context) -> None:
    """The trace database: size, entries per type, pinned tags."""
    import json

    from traces.server import status

    click.echo(json.dumps(status(_settings(ctx)), indent=2))


@main.group("images")
def images_group() -> None:
    """Base images (built once per machine) and the deployer's images on this host."""


@images_group.command("bootstrap")
@click.pass_context
def images_bootstrap(ctx: click.Context) -> None:
    """Make an offline Debian bookworm base by debootstrap + docker import (reused if present)."""
    from cli.ops import docker_client, progress
    from deployer.lifecycle.images import bootstrap_base

    click.echo(bootstrap_base(docker_client(), _settings(ctx), progress))


@images_group.command("build")
@click.option(
    "--base",
    type=click.Choice(["auto", "public", "bootstrap"]),
    default="auto",
    show_default=True,
    help="public: python/node images; bootstrap: the offline Debian base; auto: public if pullable",
)
@click.pass_context
def images_build(ctx: click.Context, base: str) -> None:
    """Build the four runtime base images from the Dockerfiles in the repo."""
    from cli.ops import docker_client, progress
    from deployer.lifecycle.images import bootstrap_base, build_base_images, public_bases_reachable

    settings, client = _settings(ctx), docker_client()
    if base == "auto":
        base = "public" if public_bases_reachable(client, progress) else "bootstrap"
    override = bootstrap_base(client, settings, progress) if base == "bootstrap" else None
    for tag in build_base_images(client, settings, base_override=override, on_line=progress):
        click.echo(tag)


@images_group.command("list")
def images_list() -> None:
    """The deployer's labelled images on this host."""
    from cli.ops import docker_client
    from deployer.lifecycle.images import list_images

    click.echo(f"{'ID':<14} {'ROLE':<10} {'SIZE MB':>8}  TAGS")
    for row in list_images(docker_client()):
        click.echo(f"{row['id'][7:19]:<14} {row['role']:<10} {row['size_mb']:>8}  {', '.join(row['tags'])}")


@main.command()
@click.option("--concurrency", "-c", type=int, help="Worker processes (default DEPLOYER_WORKER_CONCURRENCY)")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    """Run a Celery worker for the lifecycle stages and periodic task bodies."""
    import os

    from cli.ops import worker_cmd

    cmd = worker_cmd(_settings(ctx), concurrency)
    os.execv(cmd[0], cmd)  # noqa: S606 - replaces this process with the worker


@main.command()
@click.pass_context
def watch(ctx: click.Context) -> None:
    """Watch this Docker host: crashes, log tailers, reconciliation, restart policy (one per host)."""
    from watcher.main import run

    run(_settings(ctx))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, help="default: the port of DEPLOYER_URL when it is a local address, else 8000")
@click.option("--skip-images", is_flag=True, help="Do not check or build the base images first")
@click.option("--flower", is_flag=True, help="Also run Flower (Celery monitoring; needs the [flower] extra)")
@click.option("--flower-port", default=5555, show_default=True, type=int)
@click.pass_context
def up(ctx: click.Context, host: str, port: int | None, skip_images: bool, flower: bool, flower_port: int) -> None:
    """Everything for a single host: web, worker, beat, watcher (and Caddy if not running). Ctrl-C stops
    them; deployed containers keep running, and the next `up` picks them up (routes, logs, crashes)."""
    from cli import ops
    from deployer.errors import DeployerError

    settings = _settings(ctx)
    port = port or local_port(settings.url) or 8000
    initialise(settings, images=not skip_images)
    flower_argv = ops.flower_cmd(settings, flower_port) if flower else None
    sup = ops.Supervisor()
    if not settings.skip_caddy:
        caddy = None
        if not ops.caddy_reachable(settings):
            argv, env = ops.caddy_cmd(settings)
            caddy = sup.start("caddy", argv, env=env)
        try:
            ops.wait_for_caddy(settings, caddy)
            ops.ensure_caddy_server(settings)  # before any route: a Caddy started empty has no server yet
        except (click.ClickException, DeployerError) as exc:
            sup.stop()
            message = exc.message if isinstance(exc, DeployerError) else exc.format_message()
            raise click.ClickException(f"Caddy: {message}") from None
    sup.start("worker", ops.worker_cmd(settings))
    sup.start("beat", ops.beat_cmd(settings))
    sup.start("watcher", [sys.executable, "-m", "cli.main", "watch"])
    sup.start("web", [sys.executable, "-m", "cli.main", "serve", "--host", host, "--port", str(port)])
    if flower_argv is not None:
        sup.start("flower", flower_argv)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # naming, not binding
    url = f"http://{shown}:{port}"
    if not sup.wait(lambda: _answers(f"{url}/api/health"), timeout=120):
        sys.exit(sup.run())  # a child died before the web app answered: say which, stop the rest
    click.echo(f"deployer is up: dashboard {url}/ (Ctrl-C stops the deployer; deployments keep running)", err=True)
    if flower_argv is not None:
        click.echo(f"flower: http://127.0.0.1:{flower_port}/", err=True)
    click.echo("for the CLI, in another shell:", err=True)
    click.echo(f"  export DEPLOYER_URL={url}", err=True)
    click.echo("  export DEPLOYER_TOKEN=$(deployer token create --name me | tail -n 1)", err=True)
    sys.exit(sup.run())


def local_port(url: str) -> int | None:
    """The port of DEPLOYER_URL when it names this machine: `up` listens where the CLI will look."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    try:
        return parts.port  # none written: the default 8000, never 80 or 443
    except ValueError:
        return None


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@main.command()
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


@main.command()
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


@main.command()
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


@main.command()
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


if __name__ == "__main__":  # pragma: no cover
    main()
