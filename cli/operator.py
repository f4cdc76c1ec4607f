"""Operator commands: they work on this host's database, Redis, Docker and processes directly (schema,
tokens, the web server, workers, the watcher, beat's schedules, the trace runtime, base images, `up`)."""

from __future__ import annotations

import sys

import click

# The names these command bodies had in cli.main, so that they moved unchanged.
from cli.common import settings_of as _settings
from cli.common import ts as _ts
from deployer.bundles.secrets import ensure_master_key
from deployer.localkeys import private_data_root
from deployer.settings import Settings
from deployer.store import tokens
from deployer.store.db import make_engine, upgrade


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply all migrations."""
    upgrade(make_engine(_settings(ctx).database_url))
    click.echo("database is up to date")


@click.group()
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


@click.command()
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


@click.command()
@click.option("--skip-images", is_flag=True, help="Do not check or build the base images")
@click.pass_context
def init(ctx: click.Context, skip_images: bool) -> None:
    """Prepare this host once: migrations, the master key, the base images (`docker compose` runs it first)."""
    initialise(_settings(ctx), images=not skip_images)
    click.echo("ready", err=True)


@click.group("schedule")
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


@click.group("trace")
def trace_group() -> None:
    """The trace runtime: serve it, prune or clear its entries, show its state."""


@trace_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7778, show_default=True, type=int)
@click.pass_context
def trace_serve(ctx: click.Context, host: str, port: int) -> None:
    """Run the trace dashboard and signed ingest (its own SQLite file, DB_DATABASE_SQLITE)."""
    from traces.runtime.server import serve

    click.echo(f"trace runtime on http://{host}:{port}", err=True)
    serve(_settings(ctx), host=host, port=port)


@trace_group.command("prune")
@click.option("--hours", type=int, help="keep this many hours (default TRACE_PRUNE_HOURS)")
@click.option("--keep-exceptions", is_flag=True, help="never prune exception entries")
@click.pass_context
def trace_prune(ctx: click.Context, hours: int | None, keep_exceptions: bool) -> None:
    """Delete entries older than now - hours, in batches."""
    from traces.runtime.server import prune

    click.echo(f"pruned {prune(_settings(ctx), hours=hours, keep_exceptions=keep_exceptions)} entries")


@trace_group.command("clear")
@click.confirmation_option(prompt="Delete every trace entry?")
@click.pass_context
def trace_clear(ctx: click.Context) -> None:
    """Delete every entry."""
    from traces.runtime.server import clear

    click.echo(f"cleared {clear(_settings(ctx))} entries")


@trace_group.command("status")
@click.pass_context
def trace_status(ctx: click.Context) -> None:
    """The trace database: size, entries per type, pinned tags."""
    import json

    from traces.runtime.server import status

    click.echo(json.dumps(status(_settings(ctx)), indent=2))


@click.group("images")
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


@click.command()
@click.option("--concurrency", "-c", type=int, help="Worker processes (default DEPLOYER_WORKER_CONCURRENCY)")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    """Run a Celery worker for the lifecycle stages and periodic task bodies."""
    import os

    from cli.ops import worker_cmd

    cmd = worker_cmd(_settings(ctx), concurrency)
    os.execv(cmd[0], cmd)  # noqa: S606 - replaces this process with the worker


@click.command()
@click.pass_context
def watch(ctx: click.Context) -> None:
    """Watch this Docker host: crashes, log tailers, reconciliation, restart policy (one per host)."""
    from tasks.kick import make_kicker
    from watcher.main import run

    settings = _settings(ctx)
    run(settings, kick=make_kicker(settings))


@click.command()
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


COMMANDS: tuple[click.Command, ...] = (
    db,
    token,
    serve,
    init,
    schedule_group,
    trace_group,
    images_group,
    worker,
    watch,
    up,
)
