"""Following a deployment's log and status from the CLI until it settles."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from cli.client import ApiClient

SETTLED = {"running", "failed", "stopped", "crashed"}
# Told apart, not alarming: most agents log their requests to stderr, so stderr is not "error" red.
COLOURS = {"stdout": "bright_black", "stderr": "yellow", "system": "cyan"}


def echo_line(line: dict[str, object], *, timestamps: bool = False) -> None:
    stream = str(line["stream"])
    prefix = click.style(f"{stream:>6} ", fg=COLOURS.get(stream, "white"))
    if timestamps:
        ts = str(line.get("ts") or "")[:23].replace("T", " ")  # UTC, to the millisecond
        prefix = click.style(f"{ts:<23} ", dim=True) + prefix
    click.echo(prefix + str(line["text"]))


def follow(
    client: ApiClient,
    deployment_id: str,
    *,
    until: set[str] | None = SETTLED,
    after: int = 0,
    interval: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
    timestamps: bool = False,
) -> dict[str, object]:
    """Print new lines as they arrive; return the row once its status is in `until` (None: forever)."""
    while True:
        lines = client.logs(deployment_id, after=after, limit=2000)
        for line in lines:
            echo_line(line, timestamps=timestamps)
            after = int(str(line["line_no"]))
        row = client.get(deployment_id)
        if until is not None and row["status"] in until and len(lines) < 2000:
            # one more read: lines written between the log read and the status read
            for line in client.logs(deployment_id, after=after, limit=2000):
                echo_line(line, timestamps=timestamps)
            return row
        if len(lines) < 2000:
            sleep(interval)
