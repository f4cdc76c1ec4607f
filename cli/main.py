"""`deployer`: user commands (`cli.user`) talk to the API; operator commands (`cli.operator`) to this
host's database, Redis, Docker and processes directly."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from cli import operator, user
from deployer.errors import DeployerError


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
    from traces.recorder.core import recorder_for
    from traces.recorder.watchers import record_command

    rec = recorder_for(settings)
    if rec is not None and rec.on("command"):
        record_command(rec, ctx.invoked_subcommand or "", sys.argv[2:], code, ms)
        rec.flush(timeout=2)


@click.group(cls=Main)
@click.version_option(package_name="deployer")
def main() -> None:
    """Deployer: run AI agents and small services from an uploaded bundle."""


for command in (*operator.COMMANDS, *user.COMMANDS):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
