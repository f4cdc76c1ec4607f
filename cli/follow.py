"""Following a deployment's log and status from the CLI until it settles."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from cli.client import ApiClient
from deployer.terminal import strip_controls

SETTLED = {"running", "failed", "stopped", "crashed"}
# Told apart, not alarming: most agents log their requests to stderr, so stderr is not "error" red.
COLOURS = {"stdout": "bright_black", "stderr": "yellow", "system": "cyan"}


def shown(text: str, *, indent: int = 0) -> str:
    """A deployment's text as printed: escape sequences and control characters out (a container cannot
    rewrite the user's terminal), and the lines of a multi-line text indented under its first, so that
    none of them passes for a line of its own."""
    return ("\n" + " " * indent).join(strip_controls(part) for part in text.split("\n"))


def echo_line(line: dict[str, object], *, timestamps: bool = False) -> None:
    stream = str(line["stream"])
    width = 7
    prefix = click.style(f"{strip_controls(stream):>6} ", fg=COLOURS.get(stream, "white"))
    if timestamps:
        ts = strip_controls(str(line.get("ts") or ""))[:23].replace("T", " ")  # UTC, to the millisecond
        prefix = click.style(f"{ts:<23} ", dim=True) + prefix
        width += 24
    click.echo(prefix + shown(str(line["text"]), indent=width))


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
