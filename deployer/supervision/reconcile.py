"""Database vs Docker vs Caddy (reconcile-runtime in docs/architecture.md#periodic-work, and the watcher's
start-up pass).

Running rows without a live container are crashed; labelled containers without an active row are
removed (a crashed one is kept when DEPLOYER_KEEP_CRASHED_CONTAINERS says so); the Caddy server is
ensured, and running rows whose route is missing get it back (a Caddy restarted empty, as after a
restart of `deployer up`). A failure on one deployment is logged and counted, never the end of the
pass for the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from deployer.lifecycle import containers
from deployer.lifecycle.caddy import route_id
from deployer.lifecycle.context import Context
from deployer.store.rows import DEPLOYMENT as _dep
from deployer.store.states import ACTIVE, Status
from deployer.supervision.crashes import Exit, handle_exit

log = logging.getLogger(__name__)


@dataclass
class Report:
    crashed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def failed(self, what: str, exc: Exception) -> None:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        self.errors.append(f"{what}: {message}")
        log.error("reconcile: %s failed: %s", what, message)


def _exit_of(c: Any, deployment_id: str) -> Exit:
    state = c.attrs.get("State", {})
    return Exit(deployment_id, c.id, state.get("ExitCode"), bool(state.get("OOMKilled")))


def _crash_missing(ctx: Context, rows: dict[str, Any], by_dep: dict[str, Any], report: Report) -> None:
    for r in rows.values():
        if r.status not in (Status.RUNNING, Status.UNHEALTHY):
            continue
        listed = by_dep.get(r.id)
        if listed is not None and listed.status == "running":
            continue
        # The listing is older than the rows: a container started meanwhile is not missing. Judge by
        # the row's own container as it is now.
        c = containers.get(ctx.docker, r.container_id) if r.container_id else None
        if c is not None and c.status == "running":
            continue
        ex = _exit_of(c, r.id) if c is not None else Exit(r.id, r.container_id or "", None, False)
        try:
            if handle_exit(ctx, ex) == "crashed":
                report.crashed.append(r.id)
        except Exception as exc:
            report.failed(f"crash of {r.id}", exc)


def _keeps(ctx: Context, row: Any) -> bool:
    """Whether a labelled container may stay: its row is active, stopping (reconcile_stops owns it),
    or crashed with DEPLOYER_KEEP_CRASHED_CONTAINERS."""
    if row is None:
        return False
    status = Status(row.status)
    return status in ACTIVE or status is Status.STOPPED or (
        status is Status.CRASHED and ctx.settings.keep_crashed_containers
    )


def _remove_orphans(ctx: Context, rows: dict[str, Any], by_dep: dict[str, Any], report: Report) -> None:
    for dep_id, c in by_dep.items():
        if not _keeps(ctx, rows.get(dep_id)):
            try:
                containers.remove(ctx.docker, c.id, grace_sec=ctx.settings.stop_grace_sec)
                report.removed.append(c.name)
            except Exception as exc:
                report.failed(f"removing {c.name}", exc)


def _restore_routes(ctx: Context, rows: dict[str, Any], report: Report) -> None:
    if ctx.caddy is None:
        return
    try:
        ctx.caddy.ensure_server()
        present = set(ctx.caddy.route_ids())
    except Exception as exc:
        report.failed("ensuring the Caddy server", exc)
        return
    for r in rows.values():
        if r.status in (Status.RUNNING, Status.UNHEALTHY) and route_id(r.id) not in present and r.port:
            try:
                ctx.caddy.upsert_route(r.id, r.slug, ctx.settings.wildcard_domain, r.port)
                report.routes.append(r.id)
            except Exception as exc:
                report.failed(f"route of {r.id}", exc)


def reconcile_runtime(ctx: Context) -> Report:
    report = Report()
    by_dep = {c.labels.get("deployer.deployment", ""): c for c in containers.managed(ctx.docker, ctx.installation)}
    columns = (_dep.c.id, _dep.c.status, _dep.c.slug, _dep.c.port, _dep.c.container_id)
    with ctx.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(*columns))}
    _crash_missing(ctx, rows, by_dep, report)
    _remove_orphans(ctx, rows, by_dep, report)
    _restore_routes(ctx, rows, report)
    if report.crashed or report.removed or report.routes or report.errors:
        log.info("reconciled: %s", report)
    return report
